// Ping/answer between watchdog threads on a private communicator (tags never seen elsewhere).
#include "peer_probe.h"

#include <unistd.h>

#include <cstring>
#include <thread>

#include "mpi_check.h"

namespace lmt::dist {
namespace {

constexpr int kPingTag = 1;
constexpr int kAnswerTag = 2;
constexpr int kWhoBytes = 128;

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

}  // namespace

PeerProbe::PeerProbe(MPI_Comm comm, std::function<std::string()> activity)
    : activity_(std::move(activity)) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  mpi_check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup (peer probe)", world_rank);
  mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler",
            world_rank);
  mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", world_rank);
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", world_rank);
  char host[64] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  std::vector<char> mine(kWhoBytes, 0), all(size_t(kWhoBytes) * size_, 0);
  std::snprintf(mine.data(), kWhoBytes, "host %s, pid %d", host, int(getpid()));
  mpi_check(MPI_Allgather(mine.data(), kWhoBytes, MPI_CHAR, all.data(), kWhoBytes, MPI_CHAR, comm_),
            "MPI_Allgather (peer probe)", rank_);
  for (int r = 0; r < size_; ++r) who_.emplace_back(all.data() + size_t(r) * kWhoBytes);
}

PeerProbe::~PeerProbe() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (auto& p : replies_) {
    if (p.request != MPI_REQUEST_NULL) MPI_Wait(&p.request, MPI_STATUS_IGNORE);
  }
  MPI_Comm_free(&comm_);
}

void PeerProbe::answer() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;  // a communicator that outlives the Runtime: nothing to answer
  for (;;) {
    int flag = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, comm_, &flag, &status) != MPI_SUCCESS || !flag) break;
    int ping = 0;
    if (MPI_Recv(&ping, 1, MPI_INT, status.MPI_SOURCE, kPingTag, comm_, MPI_STATUS_IGNORE) !=
        MPI_SUCCESS)
      break;
    replies_.push_back(Pending{activity_(), MPI_REQUEST_NULL});
    auto& reply = replies_.back();
    MPI_Isend(reply.text.data(), int(reply.text.size()), MPI_CHAR, status.MPI_SOURCE, kAnswerTag,
              comm_, &reply.request);
  }
  while (!replies_.empty()) {
    int done = 0;
    if (MPI_Test(&replies_.front().request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done)
      break;
    replies_.pop_front();
  }
}

std::string PeerProbe::explain(std::chrono::milliseconds patience) {
  if (size_ < 2) return "";
  int ping = 1;
  std::vector<MPI_Request> pings(size_, MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r)
    if (r != rank_) MPI_Isend(&ping, 1, MPI_INT, r, kPingTag, comm_, &pings[r]);
  std::vector<std::string> answers(size_);
  int missing = size_ - 1;
  const auto until = std::chrono::steady_clock::now() + patience;
  while (missing > 0 && std::chrono::steady_clock::now() < until) {
    answer();  // a peer that probes us at the same time gets its answer too
    int flag = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kAnswerTag, comm_, &flag, &status) == MPI_SUCCESS && flag) {
      int bytes = 0;
      MPI_Get_count(&status, MPI_CHAR, &bytes);
      std::string text(size_t(std::max(bytes, 0)), '\0');
      MPI_Recv(text.data(), bytes, MPI_CHAR, status.MPI_SOURCE, kAnswerTag, comm_,
               MPI_STATUS_IGNORE);
      if (answers[status.MPI_SOURCE].empty()) --missing;
      answers[status.MPI_SOURCE] = text.empty() ? "?" : text;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::string of = " of " + std::to_string(size_);
  std::vector<std::string> silent, outside, waiting;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    const std::string name = "rank " + std::to_string(r) + of + " (" + who_[r] + ")";
    if (answers[r].empty())
      silent.push_back(name);
    else if (answers[r].rfind("outside", 0) == 0)
      outside.push_back(name + " has been " + answers[r]);
    else
      waiting.push_back(std::to_string(r));
  }
  std::vector<std::string> parts;
  const long wait_s = long(patience.count() / 1000);
  if (!silent.empty())
    parts.push_back(join(silent) + (silent.size() > 1 ? " do" : " does") + " not answer within " +
                    std::to_string(wait_s) + " s: stopped, dead or hung outside MPI");
  if (!outside.empty()) parts.push_back(join(outside) + " (slow, or stuck outside MPI)");
  if (parts.empty())
    parts.push_back("every peer answered from inside a collective (ranks " + [&] {
      std::string s;
      for (size_t i = 0; i < waiting.size(); ++i) s += (i ? "," : "") + waiting[i];
      return s;
    }() + "): the ranks issued different collectives, or the network is stuck");
  return join(parts);
}

}  // namespace lmt::dist
