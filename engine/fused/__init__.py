"""Fast paths of the planned training step: reusable per-call buffers and the split GEMM."""
