//! Dense-network element-wise kernels (activation, loss, batch norm, optimizer, ...).
