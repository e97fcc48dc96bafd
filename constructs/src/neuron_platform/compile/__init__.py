"""Model compilation: the compile spec (plain Python) and the pipeline constructs."""
