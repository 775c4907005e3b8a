// Keeps power-iteration vectors (model buffers) bitwise identical on every rank, either by
// averaging them or by giving each rank's owned vectors to everyone.
#pragma once

#include <lmt/dist/communicator.h>

#include <vector>

namespace lmt::dist {

// Collective. Replaces each vector by the unit-l2-norm direction of the ranks' mean, in place.
// The sum is taken locally in rank order over an all_gather, so every rank computes the same
// bits whatever reduction algorithm MPI picks.
void average_unit_vectors(Communicator& comm, std::vector<at::Tensor>& vectors);

// The rank that owns (iterates and shares) vector i of `world_size` ranks.
inline int vector_owner(size_t i, int world_size) { return int(i % size_t(world_size)); }

// Collective. Vector i is owned by rank vector_owner(i, size); afterwards every rank holds the owner's value
// bitwise (one all_reduce of a flat buffer to which non-owners contribute zeros).
void share_owned_vectors(Communicator& comm, std::vector<at::Tensor>& vectors);

}  // namespace lmt::dist
