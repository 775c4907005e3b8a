// Compiles cmake/lmt_torch.h once into the precompiled header the other targets reuse.
