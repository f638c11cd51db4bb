"""Verification: the Verilator/cocotb harness (``verilator``, ``drivers``, the bench entry
``cocotb_entry``), a network against its twin (``compare``) and formal proofs (``formal``)."""
