// lmt::train: taking trained weights to other tools: a safetensors file (weights, buffers and
// metadata) and a PyTorch state_dict file that Python's torch.load reads. Both written atomically.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/models/model.h>

namespace lmt::train {

// The model's defined parameters and buffers by name, in registration order. Without
// `lmt_internal`, the buffers only lmt uses (power-iteration vectors "*.pi_u") are dropped, so
// the names match the reference architecture (torchvision's resnet18 with stem=imagenet).
std::vector<std::pair<std::string, at::Tensor>> exported_tensors(models::Model& model,
                                                                 bool lmt_internal);

// The safetensors __metadata__ of `model`: architecture, num_classes, input_shape, model_options
// (JSON object), normalization_mean/std (JSON arrays, pixel scale [0,1]), class_names (JSON
// array, when given), lipschitz_bound (kSound, when `with_bound` and the model has one), and
// `extra` (e.g. the model file's own metadata) under "train.KEY".
std::map<std::string, std::string> export_metadata(models::Model& model,
                                                   const std::vector<std::string>& class_names,
                                                   const std::map<std::string, std::string>& extra,
                                                   bool with_bound);

// safetensors: u64 little-endian header length N, N bytes of JSON ({"__metadata__": {...},
// "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}, padded with
// spaces to a multiple of 8), then the raw little-endian tensor bytes. Includes lmt buffers.
void write_safetensors(const std::string& path, models::Model& model,
                       const std::map<std::string, std::string>& metadata);

// A pickled dict name -> tensor (torch::pickle_save), as torch.save(model.state_dict()) writes;
// lmt-internal buffers dropped.
void write_torch_state_dict(const std::string& path, models::Model& model);

}  // namespace lmt::train
