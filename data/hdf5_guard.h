// lmt::data (private): reading files whose HDF5 metadata carries no checksums (superblock 0/1,
// what h5py and lmt before the checksummed format wrote) or variable-length strings (the global
// heap, which has no checksum in any format): HDF5 1.10 can crash or loop forever on one changed
// byte there (fuzzed). Such a file is first read, exactly as the parent will read it, in a forked
// child with a deadline; only if the child finishes cleanly does the parent touch the file.
#pragma once

#include <functional>
#include <string>

#include <hdf5.h>

namespace lmt::data::detail {

// The superblock version read with plain file I/O (the signature is at 0, 512, 1024, ...), or -1
// when there is none. Versions >= 2 checksum the superblock; lmt writes version 3 (libver v110),
// whose object headers, chunk indexes and attribute heaps are checksummed too.
int superblock_version(const std::string& path);

// True if the root group has an attribute of variable-length string type (stored in the global
// heap). Only the attribute types are read (object header metadata), not the strings.
bool has_variable_length_strings(hid_t file);

// Runs read() in a forked child (stdout/stderr to /dev/null, no core file) and waits at most
// timeout_s. Returns if read() returned; rethrows read()'s DataError message as a DataError;
// throws a DataError naming path if the child crashed or ran out of time. A file (device, inode,
// size, mtime) that passed once is not checked again in this process. Inside the child, nested
// calls run read() directly. Caller holds the HDF5 lock (no other thread is inside HDF5 when
// the process forks).
void run_isolated_check(const std::string& path, int timeout_s, const std::function<void()>& read);

// True inside the child of run_isolated_check.
bool in_isolated_check();

}  // namespace lmt::data::detail
