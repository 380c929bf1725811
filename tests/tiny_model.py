"""Overrides shared by the tests that train a real (tiny) sample-factory run in one process: the smallest
model that still has every part, and serial training without compiling (``train.compile='off'``: quoted
or bare, a choice field takes the word ``off`` as text)."""

TINY_SERIAL = [
    "model.hidden_size=8",
    "model.num_heads=2",
    "model.num_filters=4",
    "model.num_res_blocks=0",
    "model.history_len=2",
    "train.serial=true",
    "train.num_workers=1",
    "train.policy_workers=1",
    "train.envs_per_worker=2",
    "train.double_buffer=false",
    "train.compile='off'",
]
