"""POGEMA environments for srmt (pogema / gymnasium / numpy only; never imports torch)."""
