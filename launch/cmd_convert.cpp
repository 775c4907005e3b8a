// lmt convert DATASET --src DIR --out DIR: source files to the HDF5 dataset schema.
#include <iostream>

#include <lmt/data/convert.h>

#include "cli.h"
#include "commands.h"

namespace lmt::launch {

int run_convert(int argc, char** argv, Session&) {
  CommandLine cli;
  cli.command = "convert";
  cli.usage = "lmt convert fashion-mnist|cifar10|cifar100 --src DIR --out DIR";
  cli.options.add_options()("dataset", po::value<std::string>()->required(),
                            "fashion-mnist, cifar10 or cifar100 (also the first positional word)")(
      "src", po::value<std::string>()->required()->value_name("DIR"), "directory of source files")(
      "out", po::value<std::string>()->required()->value_name("DIR"),
      "output directory (train.h5, test.h5)");
  cli.positional.add("dataset", 1);
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "dataset", {"fashion-mnist", "cifar10", "cifar100"});
  const auto dataset = vm["dataset"].as<std::string>();
  const auto src = vm["src"].as<std::string>(), out = vm["out"].as<std::string>();
  auto progress = [](const std::string& line) { std::cerr << "convert: " << line << "\n"; };
  if (dataset == "fashion-mnist") data::convert_fashion_mnist(src, out, progress);
  else if (dataset == "cifar10") data::convert_cifar10(src, out, progress);
  else data::convert_cifar100(src, out, progress);
  std::cout << "{\"command\":\"convert\",\"dataset\":\"" << dataset << "\",\"out\":\"" << out
            << "\"}" << std::endl;
  return 0;
}

}  // namespace lmt::launch
