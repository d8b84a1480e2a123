"""kerox: Keras for dense networks, with a Rust engine underneath."""
