// lmt::data (private): RAII ownership of HDF5 ids, the process-wide HDF5 lock, and the error
// helper that turns every failed HDF5 call into a DataError naming the file and the object.
#pragma once

#include <mutex>
#include <string>
#include <utility>

#include <hdf5.h>

#include <lmt/data/error.h>

namespace lmt::data::detail {

// The Debian HDF5 is built without thread safety: every HDF5 call in lmt holds this lock.
std::mutex& hdf5_mutex();

// Takes the lock and stops HDF5 from printing its own error stack (we throw instead).
class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(hdf5_mutex()) { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

 private:
  std::lock_guard<std::mutex> lock_;
};

[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}

// Owns one HDF5 id and closes it with the matching H5?close.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Handle(H5Handle&& other) noexcept { *this = std::move(other); }
  H5Handle& operator=(H5Handle&& other) noexcept {
    std::swap(id_, other.id_);
    std::swap(closer_, other.closer_);
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() { reset(); }

  hid_t get() const { return id_; }
  // Closes now; returns false if HDF5 reports a failure (e.g. flushing a file).
  bool reset() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_ != nullptr) rc = closer_(id_);
    id_ = -1;
    return rc >= 0;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// The innermost message of HDF5's error stack (e.g. "data error detected by Fletcher32 checksum",
// "incorrect metadata checksum after all read attempts"), as " (HDF5: ...)", or "".
inline std::string hdf5_reason() {
  std::string innermost;
  const auto walk = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* out = static_cast<std::string*>(data);
    if (out->empty() && e->desc != nullptr && e->desc[0] != '\0') *out = e->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &innermost);
  return innermost.empty() ? std::string() : " (HDF5: " + innermost + ")";
}

inline H5Handle checked(hid_t id, H5Handle::Closer closer, const std::string& path,
                        const std::string& what) {
  if (id < 0) fail(path, what + hdf5_reason());
  return H5Handle(id, closer);
}

inline void checked(herr_t rc, const std::string& path, const std::string& what) {
  if (rc < 0) fail(path, what + hdf5_reason());
}

}  // namespace lmt::data::detail
