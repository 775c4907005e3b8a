// lmt::data: the one exception type of the data room.
// Messages name the file (and the dataset, attribute or flag) and say what was expected.
#pragma once

#include <stdexcept>

namespace lmt::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lmt::data
