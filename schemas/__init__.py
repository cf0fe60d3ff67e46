"""pandera DataFrameModels: the data contracts between the pipeline's stages."""
