"""`make fuzz`: the fuzz tests (tests/test_fuzz_*.py) with 10 000 generated cases each."""
