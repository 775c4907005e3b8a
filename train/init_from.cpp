// --init-from: state_dict files read (torch.save's zip pickle, safetensors) and matched against
// the model by name and shape, every difference named in one message.
#include <lmt/train/init_from.h>

#include <fnmatch.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>

#include <lmt/io/atomic_file.h>
#include <lmt/io/json.h>
#include <lmt/train/ema.h>

namespace lmt::train {
namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;

std::string shape_of(const at::Tensor& t) { return c10::str(t.sizes()); }

using io::Json;

at::ScalarType safetensors_type(const std::string& dtype) {
  static const std::map<std::string, at::ScalarType> types = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  auto it = types.find(dtype);
  if (it == types.end()) throw std::runtime_error("unsupported dtype " + dtype);
  return it->second;
}

Named read_safetensors(const std::string& bytes) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  if (length > bytes.size() - 8) throw std::runtime_error("header length beyond the file");
  const std::string header = bytes.substr(8, length);
  const Json root = io::parse_json(header);  // "malformed JSON (...)"
  if (root.kind != Json::kObject) throw std::runtime_error("header is not a JSON object");
  const uint64_t data_begin = 8 + length, data_size = bytes.size() - data_begin;
  Named out;
  for (const auto& [name, entry] : root.object) {
    if (name == "__metadata__") continue;
    const Json *dtype = entry.find("dtype"), *shape = entry.find("shape"),
               *offsets = entry.find("data_offsets");
    if (!dtype || dtype->kind != Json::kString || !shape || shape->kind != Json::kArray ||
        !offsets || offsets->kind != Json::kArray || offsets->array.size() != 2)
      throw std::runtime_error("tensor '" + name + "': needs dtype, shape and data_offsets");
    std::vector<int64_t> sizes;
    for (const auto& d : shape->array) sizes.push_back(int64_t(d.number));
    const auto type = safetensors_type(dtype->string);
    const uint64_t begin = uint64_t(offsets->array[0].number),
                   end = uint64_t(offsets->array[1].number);
    at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(type));
    if (end < begin || end > data_size || end - begin != uint64_t(t.numel() * t.element_size()))
      throw std::runtime_error("tensor '" + name + "': data_offsets [" + std::to_string(begin) +
                               ", " + std::to_string(end) + ") do not fit its shape " +
                               shape_of(t) + " and the file");
    if (t.numel() > 0) std::memcpy(t.data_ptr(), bytes.data() + data_begin + begin, end - begin);
    out.emplace_back(name, t);
  }
  return out;
}

// torch.save's pickle, read by a small unpickler of our own: LibTorch 1.13's
// torch::pickle_load turns collections.OrderedDict -- what every module.state_dict() is -- into
// None and then fails. This one knows the opcodes of pickle protocols 2 to 4, builds tensors from
// the archive's storages (torch._utils._rebuild_tensor_v2, _rebuild_parameter), OrderedDicts as
// dicts, and keeps any other object opaque (BUILD's state ignored), so a training checkpoint's
// extra entries (argparse Namespace, optimizer state) do not stop it.
struct Py;
using PyPtr = std::shared_ptr<Py>;
struct Py {
  enum Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kTensor,
    kObject
  };
  Kind kind = kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;                              // string; global: "module.name"
  std::vector<PyPtr> items;                      // tuple, list; object: its arguments
  std::vector<std::pair<PyPtr, PyPtr>> entries;  // dict
  at::Tensor tensor;
};

class Unpickler {
 public:
  Unpickler(const std::string& pickle, caffe2::serialize::PyTorchStreamReader& archive)
      : p_(pickle), archive_(archive) {}

  PyPtr run() {
    for (;;) {
      const size_t op_at = at_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case '.':
          return pop();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '0':
          pop();
          break;
        case '1':
          take_to_mark();
          break;  // POP_MARK
        case '2':
          push(top());
          break;  // DUP
        case 'N':
          push(make(Py::kNone));
          break;
        case 0x88:
          push(boolean(true));
          break;
        case 0x89:
          push(boolean(false));
          break;
        case 'J':
          push(integer(int32_t(little(4))));
          break;
        case 'K':
          push(integer(int64_t(little(1))));
          break;
        case 'M':
          push(integer(int64_t(little(2))));
          break;
        case 0x8a: {  // LONG1
          const size_t n = size_t(little(1));
          if (n > 8) fail(op_at, "integer wider than 64 bits");
          uint64_t v = n ? little(n) : 0;
          if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign
          push(integer(int64_t(v)));
          break;
        }
        case 'I': {  // INT (text); "00"/"01" are False/True
          const std::string line = this->line();
          if (line == "00" || line == "01")
            push(boolean(line == "01"));
          else
            push(integer(std::stoll(line)));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          uint64_t v = 0;
          for (char c : bytes(8)) v = (v << 8) | uint8_t(c);
          double d;
          std::memcpy(&d, &v, 8);
          auto f = make(Py::kFloat);
          f->real = d;
          push(f);
          break;
        }
        case 'X':
        case 'T':
        case 'B':
          push(string(bytes(size_t(little(4)))));
          break;
        case 0x8c:
        case 'U':
        case 'C':
          push(string(bytes(size_t(little(1)))));
          break;
        case 0x8d:
        case 0x8e:
          push(string(bytes(size_t(little(8)))));
          break;
        case ')':
          push(make(Py::kTuple));
          break;
        case 't':
          push(sequence(Py::kTuple, take_to_mark()));
          break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          std::vector<PyPtr> items(size_t(op - 0x84));
          for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
          push(sequence(Py::kTuple, std::move(items)));
          break;
        }
        case ']':
          push(make(Py::kList));
          break;
        case 'l':
          push(sequence(Py::kList, take_to_mark()));
          break;
        case 'a': {
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto v = take_to_mark();
          for (auto& x : v) top()->items.push_back(x);
          break;
        }
        case '}':
          push(make(Py::kDict));
          break;
        case 'd': {
          auto kv = take_to_mark();
          push(make(Py::kDict));
          set_items(op_at, kv);
          break;
        }
        case 's': {
          auto v = pop(), k = pop();
          set_items(op_at, {k, v});
          break;
        }
        case 'u':
          set_items(op_at, take_to_mark());
          break;
        case 'q':
          memo_[little(1)] = top();
          break;
        case 'r':
          memo_[little(4)] = top();
          break;
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
        case 'j': {
          auto it = memo_.find(little(op == 'h' ? 1 : 4));
          if (it == memo_.end()) fail(op_at, "memo key missing");
          push(it->second);
          break;
        }
        case 'c': {  // GLOBAL module\nname\n
          std::string module = line();
          push(global(module + "." + line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          push(global(module->text + "." + name->text));
          break;
        }
        case 'R': {  // REDUCE
          auto args = pop(), callable = pop();
          push(reduce(op_at, callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(), cls = pop();
          auto o = make(Py::kObject);
          o->text = cls->text;
          o->items = args->items;
          push(o);
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: the object's state (e.g. a state_dict's _metadata)
        case 'Q':
          push(persistent(op_at, pop()));
          break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(op_at, std::string("unsupported pickle opcode ") + hex);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw std::runtime_error("data.pkl at byte " + std::to_string(at) + ": " + what);
  }
  uint8_t byte() {
    if (at_ >= p_.size()) fail(at_, "truncated");
    return uint8_t(p_[at_++]);
  }
  std::string bytes(size_t n) {
    if (n > p_.size() - at_) fail(at_, "truncated");
    at_ += n;
    return p_.substr(at_ - n, n);
  }
  uint64_t little(size_t n) {
    uint64_t v = 0;
    const std::string b = bytes(n);
    for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(b[i])) << (8 * i);
    return v;
  }
  std::string line() {
    const size_t end = p_.find('\n', at_);
    if (end == std::string::npos) fail(at_, "truncated");
    std::string text = p_.substr(at_, end - at_);
    at_ = end + 1;
    return text;
  }
  static PyPtr make(Py::Kind kind) {
    auto v = std::make_shared<Py>();
    v->kind = kind;
    return v;
  }
  static PyPtr boolean(bool b) {
    auto v = make(Py::kBool);
    v->integer = b;
    return v;
  }
  static PyPtr integer(int64_t i) {
    auto v = make(Py::kInt);
    v->integer = i;
    return v;
  }
  static PyPtr string(std::string text) {
    auto v = make(Py::kString);
    v->text = std::move(text);
    return v;
  }
  static PyPtr global(std::string name) {
    auto v = make(Py::kGlobal);
    v->text = std::move(name);
    return v;
  }
  static PyPtr sequence(Py::Kind kind, std::vector<PyPtr> items) {
    auto v = make(kind);
    v->items = std::move(items);
    return v;
  }
  void push(PyPtr v) { stack_.push_back(std::move(v)); }
  PyPtr top() {
    if (stack_.empty()) fail(at_, "stack underflow");
    return stack_.back();
  }
  PyPtr pop() {
    PyPtr v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<PyPtr> take_to_mark() {
    if (marks_.empty() || marks_.back() > stack_.size()) fail(at_, "no mark");
    std::vector<PyPtr> items(stack_.begin() + long(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  void set_items(size_t at, const std::vector<PyPtr>& kv) {
    if (kv.size() % 2) fail(at, "odd number of dict items");
    PyPtr dict = top();
    if (dict->kind != Py::kDict) fail(at, "SETITEM(S) on a non-dict");
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  PyPtr reduce(size_t at, const PyPtr& callable, const PyPtr& args) {
    const std::string& f = callable->text;
    if (f == "collections.OrderedDict") return make(Py::kDict);
    if (f == "torch.jit._pickle.restore_type_tag") return args->items.at(0);  // pickle_save's
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state")
      return args->items.at(0);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const auto& a = args->items;
      if (a.size() < 4 || a[0]->kind != Py::kTensor) fail(at, f + ": unexpected arguments");
      std::vector<int64_t> size, stride;
      for (const auto& d : a[2]->items) size.push_back(d->integer);
      for (const auto& d : a[3]->items) stride.push_back(d->integer);
      auto t = make(Py::kTensor);
      t->tensor = a[0]->tensor.as_strided(size, stride, a[1]->integer);
      return t;
    }
    auto o = make(Py::kObject);  // anything else: kept opaque, never a tensor
    o->text = f;
    o->items = args->items;
    return o;
  }
  // ('storage', torch.FloatStorage, KEY, LOCATION, NUMEL): archive record data/KEY.
  PyPtr persistent(size_t at, const PyPtr& pid) {
    const auto& a = pid->items;
    if (a.size() < 5 || a[0]->text != "storage") fail(at, "unsupported persistent id");
    static const std::map<std::string, at::ScalarType> types = {
        {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
        {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
        {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
        {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
        {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool}};
    auto type = types.find(a[1]->text);
    if (type == types.end()) fail(at, "unsupported storage type " + a[1]->text);
    const std::string key = a[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    auto [data, size] = archive_.getRecord("data/" + key);
    at::Tensor t = at::empty({a[4]->integer}, at::TensorOptions().dtype(type->second));
    if (size != size_t(t.numel() * t.element_size()))
      fail(at, "storage data/" + key + " holds " + std::to_string(size) + " bytes, expected " +
                   std::to_string(t.numel() * t.element_size()));
    if (size) std::memcpy(t.data_ptr(), data.get(), size);
    auto v = make(Py::kTensor);
    v->tensor = t;
    return storages_[key] = v;
  }

  const std::string& p_;
  caffe2::serialize::PyTorchStreamReader& archive_;
  size_t at_ = 0;
  std::vector<PyPtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyPtr> memo_;
  std::map<std::string, PyPtr> storages_;
};

Named tensors_of(const PyPtr& value, const std::string& where) {
  if (value->kind != Py::kDict) throw std::runtime_error(where + " is not a dict");
  Named out;
  for (const auto& [key, v] : value->entries) {
    if (key->kind != Py::kString)
      throw std::runtime_error(where + " has a key that is not a string");
    if (v->kind != Py::kTensor)
      throw std::runtime_error(where + "['" + key->text + "'] is not a tensor");
    out.emplace_back(key->text, v->tensor);
  }
  return out;
}

Named read_pickle(const std::string& bytes) {
  caffe2::serialize::PyTorchStreamReader archive(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), off_t(bytes.size())));
  if (archive.hasRecord("byteorder")) {
    auto [data, size] = archive.getRecord("byteorder");
    if (std::string(static_cast<const char*>(data.get()), size) != "little")
      throw std::runtime_error("a big-endian torch.save archive");
  }
  auto [data, size] = archive.getRecord("data.pkl");
  const std::string pickle(static_cast<const char*>(data.get()), size);
  const PyPtr root = Unpickler(pickle, archive).run();
  if (root->kind == Py::kDict) {
    bool all_tensors = true;
    for (const auto& [k, v] : root->entries) all_tensors = all_tensors && v->kind == Py::kTensor;
    for (const char* name : {"state_dict", "model"})
      for (const auto& [k, v] : root->entries)
        if (!all_tensors && k->kind == Py::kString && k->text == name && v->kind == Py::kDict)
          return tensors_of(v, std::string("the checkpoint's '") + name + "'");
  }
  return tensors_of(root, "the pickled object");
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> read_state_dict(const std::string& path) {
  std::string bytes;
  try {
    bytes = io::read_file(path);
  } catch (const std::exception& e) {
    throw InitFromError("--init-from: " + std::string(e.what()));  // "PATH: cannot read: ..."
  }
  Named tensors;
  try {
    if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0) {
      tensors = read_pickle(bytes);
    } else if (bytes.size() >= 9 && bytes[8] == '{') {
      tensors = read_safetensors(bytes);
    } else if (bytes.size() >= 2 && uint8_t(bytes[0]) == 0x80) {
      throw std::runtime_error(
          "a pre-1.6 torch.save file (not a zip archive); re-save it with torch.save in PyTorch "
          ">= 1.6 (the default format)");
    } else {
      throw std::runtime_error("neither a torch.save zip archive nor a safetensors file");
    }
  } catch (const InitFromError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw InitFromError("--init-from " + path + ": " + what.substr(0, what.find('\n')));
  }
  const std::string prefix = "module.";
  bool prefixed = !tensors.empty();
  for (const auto& [name, t] : tensors) prefixed = prefixed && name.rfind(prefix, 0) == 0;
  if (prefixed)
    for (auto& [name, t] : tensors) name.erase(0, prefix.size());
  return tensors;
}

bool skipped_by(const std::vector<std::string>& globs, const std::string& name) {
  for (const auto& g : globs)
    if (::fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

InitFromReport load_initial_weights(const std::string& path, models::Model& model,
                                    const std::vector<std::string>& skip) {
  const Named file = read_state_dict(path);
  std::map<std::string, at::Tensor> in_file(file.begin(), file.end());
  Named targets;
  for (const auto& item : model.named_parameters())
    if (item.value().defined()) targets.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers())
    if (item.value().defined()) targets.emplace_back(item.key(), item.value());

  InitFromReport report;
  std::vector<std::string> missing, unexpected, mismatched, unused_globs;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> used;
  for (const auto& [name, target] : targets) {
    if (skipped_by(skip, name)) {
      if (!is_power_iteration_vector(name)) report.skipped.push_back(name);
      continue;
    }
    auto it = in_file.find(name);
    if (it == in_file.end()) {
      if (!is_power_iteration_vector(name)) missing.push_back(name + " " + shape_of(target));
      continue;
    }
    used.insert(name);
    const at::Tensor& source = it->second;
    if (source.sizes() != target.sizes())
      mismatched.push_back(name + " (file " + shape_of(source) + ", model " + shape_of(target) +
                           ")");
    else if (source.is_floating_point() != target.is_floating_point())
      mismatched.push_back(name + " (file " + std::string(c10::toString(source.scalar_type())) +
                           ", model " + c10::toString(target.scalar_type()) + ")");
    else
      copies.emplace_back(target, source);
  }
  for (const auto& [name, t] : file)
    if (!used.count(name) && !skipped_by(skip, name))
      unexpected.push_back(name + " " + shape_of(t));
  for (const auto& g : skip) {
    bool matched = false;
    for (const auto& [name, t] : targets) matched = matched || skipped_by({g}, name);
    for (const auto& [name, t] : file) matched = matched || skipped_by({g}, name);
    if (!matched) unused_globs.push_back(g);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty() || !unused_globs.empty()) {
    std::string message = "--init-from " + path + ": does not fit model '" + model.config().name +
                          "' (matched by name and shape, strictly)";
    auto list = [&](const std::vector<std::string>& keys, const std::string& what) {
      if (keys.empty()) return;
      message += "; " + std::to_string(keys.size()) + " " + what + ": ";
      for (size_t i = 0; i < keys.size(); ++i) message += (i ? ", " : "") + keys[i];
    };
    list(mismatched, "mismatched");
    list(missing, "missing from the file");
    list(unexpected, "unexpected (not in the model)");
    list(unused_globs, "--init-from-skip glob(s) matching no key");
    message += " (--init-from-skip GLOB leaves keys as initialized, e.g. for a new head)";
    throw InitFromError(message);
  }
  at::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source);
  report.loaded = int64_t(copies.size());
  return report;
}

}  // namespace lmt::train
