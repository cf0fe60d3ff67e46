"""Column operations every stage shares, done in Arrow (a step of no single business stage).

``Series.isin`` on an Arrow string column builds one Arrow scalar per *candidate* in Python
(pandas 3.1): matching a re-run's 3 million line identifiers against those already stored took
18 s. :func:`is_in` hands both sides to Arrow's hash lookup instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_in(values: pd.Series, candidates: pd.Series | pd.Index | Iterable) -> pd.Series:
    """``values.isin(candidates)`` for text columns (NA is never in), as a bool Series on ``values``'s index."""
    if not isinstance(candidates, (pd.Series, pd.Index)):
        candidates = pd.Series(list(candidates), dtype="string")
    needles = pa.array(pd.Series(values, copy=False).astype("string"), from_pandas=True, type=pa.large_string())
    haystack = pa.array(pd.Series(candidates, copy=False).astype("string").dropna(), from_pandas=True,
                        type=pa.large_string())
    found = pc.is_in(needles, value_set=haystack, skip_nulls=True)
    return pd.Series(found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool, copy=False),
                     index=values.index, name=values.name)


def concatenated_text(texts: pa.LargeStringArray | pa.ChunkedArray) -> bytes:
    """The texts one after another, UTF-8, as the stretch of each chunk's data buffer they
    occupy (no Python string per text: a report's million rows). A missing text adds nothing."""
    pieces = []
    for chunk in texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]:
        if len(chunk):
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
            pieces.append(memoryview(chunk.buffers()[2])[offsets[0]:offsets[-1]])
    return b"".join(pieces)
