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

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The model's defined parameters and buffers by name, in registration order. Without
// `lmt_internal`, the buffers only lmt uses (power-iteration vectors "*.pi_u") are dropped, so
// the names match the reference architecture (torchvision's resnet18 with stem=imagenet).
NamedTensors exported_tensors(models::Model& model, bool lmt_internal);

// The safetensors __metadata__ of `model` (every value a string, most of them JSON): producer,
// architecture, num_classes, input_shape [C,H,W], model_options (JSON object: every option the
// architecture read with the value it took, defaults and choices like stem=auto -> "cifar"
// included), model_config (JSON object: name, num_classes, channels, height, width, mean, std and
// the options as given), normalization_mean/std (JSON arrays, pixel scale [0,1]), class_names
// (JSON array, when given), lipschitz_bound (a JSON number: kSound, when `with_bound` and the
// model has one), and `extra` (e.g. the model file's own metadata) under "train.KEY".
std::map<std::string, std::string> export_metadata(models::Model& model,
                                                   const std::vector<std::string>& class_names,
                                                   const std::map<std::string, std::string>& extra,
                                                   bool with_bound);

// `lmt export --torchvision-stem`: makes a resnet18/34/50 export load into torchvision's
// resnet18/34/50 when the lmt model is the torchvision network except for its input channels.
// It must have the ImageNet stem (7x7/2 conv + max-pool), width 64, norm=batch and the linear
// head; 3 input channels need no change; 1 channel: conv1.weight [64,1,7,7] becomes [64,3,7,7],
// the kernel repeated over the 3 channels and divided by 3, so on a grey image replicated to RGB
// the network computes the same function (sum_c (W/3) x = W x; in float32 within rounding).
// The metadata then says 3 channels (input_shape, normalization repeated) and drops the bound
// and the power-iteration vectors, which belong to the 1-channel network. Anything else throws
// TrainError saying why torchvision has no such network.
void convert_to_torchvision_stem(models::Model& model, NamedTensors& tensors,
                                 std::map<std::string, std::string>* metadata);

// safetensors: u64 little-endian header length N, N bytes of JSON ({"__metadata__": {...},
// "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}, padded with
// spaces to a multiple of 8), then the raw little-endian tensor bytes.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata);

// PyTorch's own file format, what torch.save(state_dict) writes: a zip (LibTorch's
// PyTorchStreamWriter) of archive/data.pkl, a protocol-2 pickle of a plain dict name ->
// torch._utils._rebuild_tensor_v2(persistent storage ('storage', torch.FloatStorage, key, 'cpu',
// numel), offset, size, stride, False, OrderedDict()), the storages as archive/data/KEY,
// archive/byteorder ("little") and archive/version. Only the globals every
// torch.load(weights_only=True) allows (1.13 and 2.x): _rebuild_tensor_v2, OrderedDict,
// torch.*Storage. torch::pickle_save is not used: it tags the dict with
// torch.jit._pickle.restore_type_tag, which weights_only refuses.
void write_torch_state_dict(const std::string& path, const NamedTensors& tensors);

}  // namespace lmt::train
