"""What can be asked for: GPU types, data centers, CUDA versions, CPU flavors."""
