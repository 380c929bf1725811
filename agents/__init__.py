"""srmt application layer: sample-factory adapter, policies, planners, evaluation and the CLI.

The only package that knows both ``srmt`` (torch models) and ``envs`` (POGEMA environments).
"""
