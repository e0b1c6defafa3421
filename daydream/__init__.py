"""The ``daydream`` command line: one entry point over engine/, finetune/, models/ and demo/."""
