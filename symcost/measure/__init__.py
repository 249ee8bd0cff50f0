"""The measured route: the spec built in PyTorch and counted by PyTorch itself (reference), the
bytes saved for backward (saved), DTensor / FSDP2 shards and communication (shards), the Hugging
Face transformers model of an imported config (hf), and the symbolic route compared with each,
component by component (verify). torch is imported here and in the components' builds only."""
