// lmt::train: starting a run from weights trained elsewhere (--init-from): a torchvision or timm
// state_dict saved by torch.save, or a safetensors file, copied into the model by name and shape.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/models/model.h>
#include <lmt/train/options.h>

namespace lmt::train {

// A file that does not fit: unreadable, or keys missing, unexpected or of another shape. The CLI
// exits with 2 (a usage error: the flags name a file that cannot start this run).
class InitFromError : public TrainError {
 public:
  using TrainError::TrainError;
};

// The tensors of a state_dict file by name, in file order. Told apart by content, not name:
// - torch.save's zip archive (PyTorch >= 1.6), read by torch::pickle_load: a dict of tensors,
//   or a training checkpoint dict holding one under "state_dict" or "model" (timm, torchvision's
//   reference scripts); the pre-1.6 format is refused with a message to re-save it;
// - safetensors (u64 header length, JSON header, raw little-endian data; F64/F32/F16/BF16,
//   I64/I32/I16/I8/U8, BOOL), as lmt export writes it.
// A "module." prefix on every key (a DDP-wrapped model's state_dict) is removed. Throws
// InitFromError naming the file.
std::vector<std::pair<std::string, at::Tensor>> read_state_dict(const std::string& path);

// Whether `name` matches one of the --init-from-skip globs (fnmatch: * ? [...]; '*' also
// matches dots, so "fc.*" is every key of fc and "layer4.*" a whole stage).
bool skipped_by(const std::vector<std::string>& globs, const std::string& name);

struct InitFromReport {
  int64_t loaded = 0;                // tensors copied into the model
  std::vector<std::string> skipped;  // model keys left as initialized by --init-from-skip
};

// Copies the file's tensors into `model`'s parameters and buffers of the same name and shape
// (values cast to the model's dtype; floating point into floating point only). Strict: every
// model key must be in the file and every file key in the model, apart from keys matching a
// `skip` glob (on either side) and lmt's power-iteration vectors "*.pi_u" (loaded when present,
// else kept as initialized: only a warm start, iterated before every training step). On any
// difference nothing is copied and one InitFromError names the file and every missing,
// unexpected and mismatched key, and every glob that matches no key.
InitFromReport load_initial_weights(const std::string& path, models::Model& model,
                                    const std::vector<std::string>& skip);

}  // namespace lmt::train
