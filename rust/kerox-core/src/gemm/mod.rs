//! Single-precision GEMM with runtime dispatch.
