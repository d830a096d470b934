"""PULSE: photo upsampling via latent space exploration."""
