"""pytest fixtures shipped with the kernel (placeholder)."""
