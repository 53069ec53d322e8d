// difflab-cli canny / scribble: the ControlNet hints of one picture, written as a PNG.
#include <torch/torch.h>

#include <cstring>
#include <iostream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "core/util/paths.h"
#include "core/vision/canny.h"
#include "core/vision/hints.h"
#include "core/vision/png.h"
#include "core/vision/scribble.h"

namespace difflab::cli {
namespace {

// A PNG/JPG as a (1, C, H, W) float tensor in [0, 1], C = 1 or 3 (an alpha channel is dropped).
at::Tensor load_picture(const std::string& path) {
  const Image8 image = read_image(path);  // throws naming the path
  if (image.width < 3 || image.height < 3)
    throw std::runtime_error("image '" + path + "' is " + std::to_string(image.width) + "x" +
                             std::to_string(image.height) + "; at least 3x3 needed");
  auto bytes = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                {image.height, image.width, image.channels}, torch::kUInt8);
  const int64_t colour = image.channels >= 3 ? 3 : 1;
  return bytes.narrow(2, 0, colour).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32) / 255.0;
}

// (1, 1, H, W) values in [0, 1] → a grey PNG (0-255), each pixel scale×scale.
void write_gray(const std::string& path, const at::Tensor& map, int scale, IfExists if_exists) {
  auto bytes = (map[0][0].clamp(0, 1) * 255.0).round().to(torch::kUInt8).cpu();
  if (scale > 1) bytes = bytes.repeat_interleave(scale, 0).repeat_interleave(scale, 1);
  bytes = bytes.contiguous();
  Image8 out;
  out.height = static_cast<int>(bytes.size(0));
  out.width = static_cast<int>(bytes.size(1));
  out.channels = 1;
  out.pixels.assign(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
  write_png(path, out, if_exists);
}

// (1, 1, H, W) 0/1 → a white-on-black grey PNG, each pixel scale×scale.
void write_mask(const std::string& path, const at::Tensor& mask, int scale, IfExists if_exists) {
  write_gray(path, (mask > 0.5).to(torch::kFloat32), scale, if_exists);
}

// The two positional paths, or a UsageError.
std::pair<std::string, std::string> in_out(const Args& args) {
  const auto& words = args.positional();
  if (words.size() != 2)
    throw UsageError("expected an input and an output path, got " + std::to_string(words.size()) +
                     " path(s)");
  return {words[0], words[1]};
}

int scale_option(const Args& args) {
  const int scale = args.get_int("scale", 1);
  if (scale < 1 || scale > 64) throw UsageError("--scale must be in [1, 64]");
  return scale;
}

}  // namespace

int cmd_canny(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"low", true, "T  weak-edge threshold on the gradient magnitude, 0-255 scale (default 100)", real(0, 1e4)},
      {"high", true, "T  strong-edge threshold (default 200)", real(0, 1e4)},
      {"blur", true, "SIGMA  Gaussian blur before the gradients (default 0 = none, as OpenCV)", real(0, 100)},
      {"l2", false, "   gradient magnitude sqrt(gx^2 + gy^2) instead of |gx| + |gy|"},
      {"scale", true, "N  write each pixel N times larger (default 1)", integer(1, 64)},
      overwrite_option(),
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 2, specs, /*max_positional=*/2);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli canny in.png out.png [options]\n\nCanny edges of a "
                 "PNG/JPG (colour is turned to grey), written white on black.\nThe same "
                 "detector makes the ControlNet's canny hints.\n\n"
              << format_options(specs);
    return 0;
  }
  const auto [in, out] = in_out(args);
  check_output(args, "output", out);  // before the work, without touching what is there
  CannyOptions options;
  options.low = args.get_double("low", options.low);
  options.high = args.get_double("high", options.high);
  options.blur_sigma = args.get_double("blur", options.blur_sigma);
  options.l2_gradient = args.has("l2");
  if (options.low > options.high)
    throw UsageError("--low " + args.get("low", "100") + " is above --high " +
                     args.get("high", "200") + ": the weak-edge threshold must not exceed the strong one");
  if (options.blur_sigma < 0 || options.blur_sigma > 20)
    throw UsageError("--blur must be in [0, 20]");
  const int scale = scale_option(args);
  const auto image = load_picture(in);
  const auto edges = canny(image, options);
  write_mask(out, edges, scale, if_exists(args));
  std::cout << in << ": " << image.size(3) << "x" << image.size(2) << ", "
            << edges.sum().item<double>() << " edge pixels (low " << options.low << ", high "
            << options.high << ") -> " << out << "\n";
  return 0;
}

int cmd_scribble(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"seed", true, "N  seed of the random thickening, jitter and erasing (default 0)", integer(0, kInt64Max)},
      {"threshold", true, "T  binarise at this brightness in [0, 1] (default 0.5)", real(0, 1)},
      {"max-drop", true, "F  erase up to this share of 4x4 blocks (default 0.3)", real(0, 1)},
      {"max-dilate", true, "N  thicken by up to N 3x3 dilations (default 1)", integer(0, 16)},
      {"jitter", true, "PX  random shift of up to PX pixels (default 1)", real(0, 64)},
      {"canny-share", true, "F  chance of using Canny edges instead of the skeleton (default 0.1)", real(0, 1)},
      {"scale", true, "N  write each pixel N times larger (default 1)", integer(1, 64)},
      overwrite_option(),
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 2, specs, /*max_positional=*/2);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli scribble in.png out.png [options]\n\nA synthesised "
                 "scribble hint of a PNG/JPG, as the ControlNet trainer makes them:\nthe "
                 "skeleton of the bright strokes, jittered, thickened and partly erased.\n\n"
              << format_options(specs);
    return 0;
  }
  const auto [in, out] = in_out(args);
  check_output(args, "output", out);
  ScribbleOptions options;
  options.threshold = args.get_double("threshold", options.threshold);
  options.max_drop = args.get_double("max-drop", options.max_drop);
  options.max_dilate = args.get_int("max-dilate", options.max_dilate);
  options.jitter_px = args.get_double("jitter", options.jitter_px);
  options.canny_share = args.get_double("canny-share", options.canny_share);
  if (options.max_drop < 0 || options.max_drop > 1)
    throw UsageError("--max-drop must be in [0, 1]");
  if (options.max_dilate < 0 || options.max_dilate > 8)
    throw UsageError("--max-dilate must be in [0, 8]");
  if (options.jitter_px < 0 || options.jitter_px > 8)
    throw UsageError("--jitter must be in [0, 8]");
  if (options.canny_share < 0 || options.canny_share > 1)
    throw UsageError("--canny-share must be in [0, 1]");
  const int64_t seed = args.get_int64("seed", 0);
  const int scale = scale_option(args);
  const auto image = load_picture(in);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  const auto hint = synthesize_scribbles(image, gen, options);
  write_mask(out, hint, scale, if_exists(args));
  std::cout << in << ": " << image.size(3) << "x" << image.size(2) << ", "
            << hint.sum().item<double>() << " scribble pixels (seed " << seed << ") -> " << out
            << "\n";
  return 0;
}

int cmd_hint(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"kind", true, "canny|scribble|hough|mask|distance  which hint (default canny)"},
      {"low", true, "T  canny weak-edge threshold, 0-255 (canny, hough; default 100)", real(0, 1e4)},
      {"high", true, "T  canny strong-edge threshold (canny, hough; default 200)", real(0, 1e4)},
      {"threshold", true, "T  brightness in [0, 1] that counts as the object (scribble: default 0.5; mask, distance: default 0.2, as controlnet.mask_threshold)", real(0, 1)},
      {"seed", true, "N  seed of the synthetic scribble (default 0)", integer(0, kInt64Max)},
      {"votes", true, "N  hough: votes (edge pixels) a line needs (default 8)", integer(1, 1000000)},
      {"min-length", true, "PX  hough: shorter segments are dropped (default 5)", real(0, 1e6)},
      {"max-gap", true, "PX  hough: missing pixels bridged within one segment (default 2)", real(0, 1e6)},
      {"scale", true, "N  write each pixel N times larger (default 1)", integer(1, 64)},
      overwrite_option(),
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 2, specs, /*max_positional=*/2);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli hint --kind KIND in.png out.png [options]\n\nA ControlNet hint "
                 "of a picture:\n  canny     its Canny edges\n  scribble  a synthetic scribble of "
                 "its bright strokes\n  hough     the straight segments a Hough transform finds in its "
                 "canny edges\n  mask      its filled silhouette (threshold, then holes filled)\n  "
                 "distance  how far inside the silhouette each pixel lies, 0-255 from the outline "
                 "to the deepest point\n             (a depth-like map for flat grey pictures)\n\n"
              << format_options(specs);
    return 0;
  }
  const std::string kind = args.get("kind", "canny");
  if (kind != "canny" && kind != "scribble" && kind != "hough" && kind != "mask" && kind != "distance")
    throw UsageError("--kind " + kind + ": choose one of canny, scribble, hough, mask, distance");
  const auto [in, out] = in_out(args);
  check_output(args, "output", out);
  CannyOptions canny_options;
  canny_options.low = args.get_double("low", canny_options.low);
  canny_options.high = args.get_double("high", canny_options.high);
  if (canny_options.low > canny_options.high)
    throw UsageError("--low " + args.get("low", "100") + " is above --high " + args.get("high", "200"));
  const bool region = kind == "mask" || kind == "distance";
  const double threshold = args.get_double("threshold", region ? ControlNetConfig{}.mask_threshold : 0.5);
  const int scale = scale_option(args);
  const auto image = load_picture(in);
  at::Tensor hint;
  std::string what;
  if (kind == "canny") {
    hint = canny(image, canny_options);
    what = "edge pixels";
  } else if (kind == "scribble") {
    ScribbleOptions options;
    options.threshold = threshold;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(args.get_int64("seed", 0)));
    hint = synthesize_scribbles(image, gen, options);
    what = "scribble pixels";
  } else if (kind == "hough") {
    HoughOptions options;
    options.threshold = args.get_int("votes", options.threshold);
    options.min_line_length = args.get_double("min-length", options.min_line_length);
    options.max_line_gap = args.get_double("max-gap", options.max_line_gap);
    const auto segments = hough_segments(canny(image, canny_options), options);
    hint = draw_segments(segments, image.size(2), image.size(3));
    what = "pixels on " + std::to_string(segments[0].size()) + " segments";
  } else {
    HintMapOptions options;
    options.threshold = threshold;
    hint = hint_map(to_gray(image), kind == "mask" ? HintKind::Mask : HintKind::Distance, options);
    what = kind == "mask" ? "silhouette pixels" : "pixels inside the silhouette";
  }
  if (kind == "distance")
    write_gray(out, hint, scale, if_exists(args));
  else
    write_mask(out, hint, scale, if_exists(args));
  std::cout << in << ": " << image.size(3) << "x" << image.size(2) << ", " << kind << ": "
            << (hint > 0).sum().item<int64_t>() << " " << what << " -> " << out << "\n";
  return 0;
}

}  // namespace difflab::cli
