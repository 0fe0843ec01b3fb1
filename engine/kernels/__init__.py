"""Fused forward/backward kernels on raw backend arrays, shared by the ops and the layers.

`conv` holds N-d convolution (im2col over strided views, one matmul per group) and `pool` the
max/average pooling windows; both are channels-last and work on NumPy or CuPy arrays alike.
"""
