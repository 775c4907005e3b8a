// Names the rank that stalled a collective: every communicator's watchdog thread answers pings
// on a private duplicate of the communicator; at a missed deadline it pings every peer, and the
// peers that do not answer (stopped, dead) or are outside collectives (slow, stuck) are named.
#pragma once

#include <mpi.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace lmt::dist {

class PeerProbe {
 public:
  // Collective over `comm` (duplicates it, gathers every rank's host and pid). Needs
  // MPI_THREAD_MULTIPLE: answer() and explain() run on the watchdog thread while the
  // communication thread is inside MPI. `activity` says what this rank is doing, e.g.
  // "waiting in all_reduce for 12 s" or "outside collectives for 12 s".
  PeerProbe(MPI_Comm comm, std::function<std::string()> activity);
  ~PeerProbe();
  PeerProbe(const PeerProbe&) = delete;
  PeerProbe& operator=(const PeerProbe&) = delete;

  // Every watchdog tick: answers the pings that arrived.
  void answer();
  // At a missed deadline: pings every peer, waits up to `patience` for the answers and returns
  // e.g. "rank 1 of 2 (host h, pid p) did not answer within 3 s: stopped or hung outside MPI".
  std::string explain(std::chrono::milliseconds patience = std::chrono::milliseconds(3000));
  const std::string& who(int rank) const { return who_[rank]; }

 private:
  struct Pending {
    std::string text;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::function<std::string()> activity_;
  std::vector<std::string> who_;  // "host h, pid p" per rank
  std::deque<Pending> replies_;
};

}  // namespace lmt::dist
