"""Customer partitions: how a run too big for memory is cut into slices that do not interact.

Business step: before the orders are read. A run over ``partition_lines`` lines is processed
one partition at a time (issue 7: bounded memory); this module decides which lines go together.

Lines are tied when a rule looks at them together:

- the same order — by order number, else by order GUID (R1, R2 atomic orders, the R6
  occurrence key, R7 fulfilment, R8 one currency per order);
- the same customer — by CRM account id *or* by name (R3 mappings and AMBIGUOUS_CUSTOMER,
  R4 contracts, R5 subscriptions): one id spelled under two names, or one name under two ids,
  ties all of those lines;
- the same line id (R6 DUPLICATE_LINE across orders).

A partition is a union of whole connected components of that relation, so every rule sees in
its partition exactly the lines it sees in the whole run, and the results are those of the
in-memory path. Keys are normalised at least as coarsely as the rules compare them and hashed
to 64 bits: a coarser key or a hash collision can only join two components, never split one.
A component bigger than ``partition_lines`` (say one customer with millions of lines) is one
partition on its own: correct, only bigger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from w365etl.reference import name_key

#: the fields whose values tie lines together
KEY_FIELDS = ("order_number", "order_id", "customer_id", "customer_name", "line_id")
#: hash salts per kind of key (16 characters each), so an order number never meets a line id
_SALTS = {"order_number": "w365-order-num..", "order_id": "w365-order-guid.", "customer_id": "w365-customer-id",
          "customer_name": "w365-customer-nm", "line_id": "w365-line-guid.."}
#: GUIDs are compared without braces, hyphens, case or spaces (ingest's parse_guid is finer)
_GUID_NOISE = r"[{}\-\s]"
#: the low bits of a row-alone hub: the row itself is its order (no number, no GUID)
_ROW_HUB_TAG = np.uint64(0xA5A5_0000_0000_0000)


@dataclass
class RowKeys:
    """The tie keys of a block of rows: each row's hub (its order) and the edges it adds."""

    hubs: np.ndarray          # uint64 per row
    edges: np.ndarray         # (n, 2) uint64: hub — order GUID, hub — customer id, hub — customer name
    line_edges: np.ndarray    # (n, 2) uint64: line id — hub


def _normalised(values: pa.Array, field: str) -> pa.Array:
    text = values.cast(pa.string())
    if field in ("order_id", "customer_id", "line_id"):
        return pc.utf8_lower(pc.replace_substring_regex(text, _GUID_NOISE, ""))
    # names and order numbers: case-insensitive, whitespace collapsed (how names are compared)
    keyed = name_key(pd.Series(pd.arrays.ArrowStringArray(text)))
    return keyed.array.__arrow_array__()


def hash_keys(values: pa.Array, field: str) -> np.ndarray:
    """64-bit hashes of the normalised values; 0 where the value is missing or blank.

    The distinct cells are normalised and hashed, not every cell (a customer's name repeats
    on every line of every order)."""
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    keyed = _normalised(encoded.dictionary, field)
    dictionary = keyed.to_numpy(zero_copy_only=False).astype(object)
    hashed = pd.util.hash_array(dictionary, hash_key=_SALTS[field], categorize=False)
    hashed[pd.isna(dictionary) | (dictionary == "")] = 0
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    out = np.zeros(len(indices), dtype=np.uint64)
    present = indices >= 0
    out[present] = hashed[indices[present]]
    return out


def row_keys(columns: dict[str, pa.Array | None], row_ids: np.ndarray) -> RowKeys:
    """Tie keys for a block of rows. ``columns`` maps each of ``KEY_FIELDS`` to its cells (or
    None when the file has no such column); ``row_ids`` are unique per row of the run."""
    n = len(row_ids)
    hashed = {field: (hash_keys(values, field) if values is not None else np.zeros(n, dtype=np.uint64))
              for field, values in columns.items()}
    for field in KEY_FIELDS:
        hashed.setdefault(field, np.zeros(n, dtype=np.uint64))
    # outcomes.order_keys: the order number, else the order GUID, else the row alone
    hubs = np.where(hashed["order_number"] != 0, hashed["order_number"], hashed["order_id"])
    alone = hubs == 0
    hubs[alone] = _ROW_HUB_TAG ^ row_ids[alone].astype(np.uint64)
    pairs = []
    for field in ("order_id", "customer_id", "customer_name"):
        other = hashed[field]
        present = other != 0
        pairs.append(np.column_stack([hubs[present], other[present]]))
    # every line of an order repeats its order's edges: keep each once
    stacked = np.concatenate(pairs)
    edges = pd.DataFrame(stacked).drop_duplicates().to_numpy(dtype=np.uint64)
    has_line = hashed["line_id"] != 0
    line_edges = np.column_stack([hashed["line_id"][has_line], hubs[has_line]])
    return RowKeys(hubs, edges, line_edges)


@dataclass(frozen=True)
class Partitions:
    """Which partition each hub (order) belongs to; ``partition_of`` maps a block's hubs."""

    hub_values: np.ndarray     # sorted unique hubs
    hub_partition: np.ndarray  # int32 per hub
    count: int
    lines_per_partition: np.ndarray

    def partition_of(self, hubs: np.ndarray) -> np.ndarray:
        return self.hub_partition[np.searchsorted(self.hub_values, hubs)]


def customer_ties(customer_ids: pa.Array, names: pa.Array) -> np.ndarray:
    """Edges id — name of stored customers: a line naming the id and a line naming the name
    resolve to the same stored customer (``mapping.resolve_customers``), so they tie."""
    ids, keyed = hash_keys(customer_ids, "customer_id"), hash_keys(names, "customer_name")
    both = (ids != 0) & (keyed != 0)
    return np.column_stack([ids[both], keyed[both]])


def assign_partitions(blocks: list[RowKeys], max_lines: int, ties: np.ndarray | None = None) -> Partitions:
    """Components of the tie relation, packed in order of first appearance into partitions of
    about ``max_lines`` lines (a component is never split). ``ties``: more edges that count no
    line (stored customers' id — name)."""
    if max_lines < 1:
        raise ValueError("partition_lines must be at least 1")
    hubs = np.concatenate([block.hubs for block in blocks]) if blocks else np.empty(0, dtype=np.uint64)
    edges = np.concatenate([block.edges for block in blocks]) if blocks else np.empty((0, 2), dtype=np.uint64)
    if ties is not None and len(ties):
        edges = np.concatenate([edges, ties.astype(np.uint64)])
    line_edges = _shared_line_ids(np.concatenate([block.line_edges for block in blocks])
                                  if blocks else np.empty((0, 2), dtype=np.uint64))
    nodes, inverse = np.unique(np.concatenate([hubs, edges.ravel(), line_edges.ravel()]), return_inverse=True)
    n_hub_rows, n_edges = len(hubs), len(edges)
    row_node = inverse[:n_hub_rows]
    a = inverse[n_hub_rows:n_hub_rows + 2 * n_edges].reshape(-1, 2)
    b = inverse[n_hub_rows + 2 * n_edges:].reshape(-1, 2)
    links = np.concatenate([a, b]) if len(b) else a
    graph = coo_matrix((np.ones(len(links), dtype=np.int8), (links[:, 0], links[:, 1])), shape=(len(nodes), len(nodes)))
    _, component = connected_components(graph, directed=False)
    row_component = component[row_node]
    # pack components in order of their first line, so partitions follow the files' order
    components, first_row, sizes = np.unique(row_component, return_index=True, return_counts=True)
    order = np.argsort(first_row, kind="stable")
    packed = np.empty(len(components), dtype=np.int64)
    packed[order] = _pack(sizes[order], max_lines)
    partition_of_component = np.full(component.max() + 1 if len(component) else 0, -1, dtype=np.int64)
    partition_of_component[components] = packed
    hub_nodes = np.unique(row_node)
    hub_partition = partition_of_component[component[hub_nodes]].astype(np.int32)
    count = int(packed.max()) + 1 if len(packed) else 0
    lines_per_partition = np.bincount(partition_of_component[row_component], minlength=count)
    return Partitions(nodes[hub_nodes], hub_partition, count, lines_per_partition)


def _pack(sizes: np.ndarray, max_lines: int) -> np.ndarray:
    """Greedy packing in order: a partition takes components until it holds ``max_lines`` lines
    (so it may exceed that by less than one component, and no small remainder is left over as
    a partition of its own unless it is the last)."""
    partition = np.empty(len(sizes), dtype=np.int64)
    current, filled = 0, 0
    # one step per component (tens of thousands for millions of lines), not per line
    for position, size in enumerate(sizes.tolist()):
        if filled >= max_lines:
            current, filled = current + 1, 0
        partition[position] = current
        filled += size
    return partition


def _shared_line_ids(line_edges: np.ndarray) -> np.ndarray:
    """Only line ids seen under two or more orders tie anything (R6 DUPLICATE_LINE)."""
    if not len(line_edges):
        return line_edges
    frame = pd.DataFrame({"line": line_edges[:, 0], "hub": line_edges[:, 1]}).drop_duplicates()
    shared = frame[frame["line"].duplicated(keep=False)]
    return shared.to_numpy(dtype=np.uint64)

