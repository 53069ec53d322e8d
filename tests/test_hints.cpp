// The Hough, silhouette and distance hints (core/vision/hints) on shapes with known answers.
// The Hough cases follow cv::HoughLinesP's documented parameters: segments shorter than
// minLineLength are rejected, points on one line are linked across at most maxLineGap
// missing pixels, a line needs `threshold` votes, and each segment is reported by its two
// end points (x1, y1, x2, y2).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/vision/hint_preview.h"
#include "core/vision/hints.h"
#include "core/vision/scribble.h"

namespace difflab {
namespace {

at::Tensor blank(int64_t h, int64_t w, int64_t batch = 1) { return torch::zeros({batch, 1, h, w}); }

void put(at::Tensor& t, int x, int y, int64_t b = 0) { t[b][0][y][x] = 1.0f; }

// A segment with its end points in a fixed order (HoughLinesP does not promise one).
LineSegment normalized(LineSegment s) {
  if (std::make_pair(s.x2, s.y2) < std::make_pair(s.x1, s.y1)) {
    std::swap(s.x1, s.x2);
    std::swap(s.y1, s.y2);
  }
  return s;
}

std::vector<LineSegment> normalized(std::vector<LineSegment> v) {
  for (auto& s : v) s = normalized(s);
  std::sort(v.begin(), v.end(), [](const LineSegment& a, const LineSegment& b) {
    return std::tie(a.x1, a.y1, a.x2, a.y2) < std::tie(b.x1, b.y1, b.x2, b.y2);
  });
  return v;
}

HoughOptions options(int threshold, double min_length, double gap) {
  HoughOptions o;
  o.threshold = threshold;
  o.min_line_length = min_length;
  o.max_line_gap = gap;
  return o;
}

TEST(Hough, OnePixelVotesOnceAtEveryAngleInOpenCvsBins) {
  auto edges = blank(20, 20, 2);  // the second picture stays empty
  put(edges, 5, 3);
  const auto acc = hough_accumulator(edges);
  // 180 angles; numrho = round(2 (20 + 20) + 1) = 81, so bins are offset by (81 − 1) / 2 = 40.
  ASSERT_EQ(acc.sizes(), (std::vector<int64_t>{2, 180, 81}));
  EXPECT_EQ(acc[0].sum().item<float>(), 180.0f);
  EXPECT_EQ(acc[1].sum().item<float>(), 0.0f);
  EXPECT_EQ(acc[0][0][40 + 5].item<float>(), 1.0f);   // θ = 0: ρ = x
  EXPECT_EQ(acc[0][90][40 + 3].item<float>(), 1.0f);  // θ = 90°: ρ = y
  // θ = 135°: ρ = (−5 + 3) / √2 = −1.41 → −1.
  EXPECT_EQ(acc[0][135][40 - 1].item<float>(), 1.0f);
}

TEST(Hough, CollinearPixelsPeakAtTheirLine) {
  auto edges = blank(20, 20);
  for (int x = 2; x <= 17; ++x) put(edges, x, 7);
  const auto acc = hough_accumulator(edges);
  EXPECT_EQ(acc.max().item<float>(), 16.0f);
  EXPECT_EQ(acc[0][90][40 + 7].item<float>(), 16.0f);
}

TEST(Hough, HorizontalVerticalAndDiagonalLinesGiveOneSegmentEach) {
  auto edges = blank(24, 24, 3);
  for (int x = 3; x <= 18; ++x) put(edges, x, 10, 0);
  for (int y = 2; y <= 20; ++y) put(edges, 6, y, 1);
  for (int i = 4; i <= 16; ++i) put(edges, i, i, 2);
  const auto found = hough_segments(edges, options(8, 5, 2));
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(normalized(found[0]), (std::vector<LineSegment>{{3, 10, 18, 10}}));
  EXPECT_EQ(normalized(found[1]), (std::vector<LineSegment>{{6, 2, 6, 20}}));
  EXPECT_EQ(normalized(found[2]), (std::vector<LineSegment>{{4, 4, 16, 16}}));
}

TEST(Hough, MaxLineGapLinksPiecesAcrossThatManyMissingPixels) {
  auto edges = blank(24, 24);
  for (int x = 2; x <= 8; ++x) put(edges, x, 5);
  for (int x = 12; x <= 20; ++x) put(edges, x, 5);  // 9, 10, 11 missing: a gap of 3
  EXPECT_EQ(normalized(hough_segments(edges, options(10, 5, 3))[0]),
            (std::vector<LineSegment>{{2, 5, 20, 5}}));
  EXPECT_EQ(normalized(hough_segments(edges, options(10, 5, 2))[0]),
            (std::vector<LineSegment>{{2, 5, 8, 5}, {12, 5, 20, 5}}));
}

TEST(Hough, SegmentsShorterThanMinLineLengthAreRejected) {
  auto edges = blank(16, 16);
  for (int x = 3; x <= 6; ++x) put(edges, x, 9);  // end points 3 apart
  EXPECT_EQ(hough_segments(edges, options(4, 3, 1))[0].size(), 1u);
  EXPECT_TRUE(hough_segments(edges, options(4, 4, 1))[0].empty());
}

TEST(Hough, ALineNeedsThresholdVotes) {
  auto edges = blank(16, 16);
  for (int y = 2; y <= 11; ++y) put(edges, 8, y);  // 10 pixels
  EXPECT_EQ(hough_segments(edges, options(10, 3, 1))[0].size(), 1u);
  EXPECT_TRUE(hough_segments(edges, options(11, 3, 1))[0].empty());
}

TEST(Hough, ASquareOutlineIsFourSegmentsThatRedrawIt) {
  auto edges = blank(20, 20);
  for (int i = 4; i <= 15; ++i) {
    put(edges, i, 4);
    put(edges, i, 15);
    put(edges, 4, i);
    put(edges, 15, i);
  }
  const auto found = hough_segments(edges, options(8, 5, 1));
  EXPECT_EQ(found[0].size(), 4u);
  EXPECT_TRUE(torch::equal(draw_segments(found, 20, 20), edges));
}

TEST(Hough, BadOptionsAndShapesAreErrors) {
  EXPECT_THROW(hough_accumulator(torch::zeros({1, 3, 8, 8})), std::invalid_argument);
  EXPECT_THROW(hough_segments(blank(8, 8), options(0, 1, 1)), std::invalid_argument);
  HoughOptions o;
  o.rho = 0;
  EXPECT_THROW(hough_accumulator(blank(8, 8), o), std::invalid_argument);
}

TEST(DrawSegments, BresenhamInEveryDirectionClippedToThePicture) {
  const auto drawn = draw_segments({{{0, 0, 3, 3}, {7, 1, 5, 1}}, {{2, 6, 2, 9}}}, 8, 8);
  ASSERT_EQ(drawn.sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
  for (int i = 0; i <= 3; ++i) EXPECT_EQ(drawn[0][0][i][i].item<float>(), 1.0f);
  for (int x = 5; x <= 7; ++x) EXPECT_EQ(drawn[0][0][1][x].item<float>(), 1.0f);
  EXPECT_EQ(drawn[0].sum().item<float>(), 7.0f);
  EXPECT_EQ(drawn[1].sum().item<float>(), 2.0f);  // rows 6 and 7; 8 and 9 lie outside
}

// A ring of outer radius 6 and inner radius 3 around (10, 10), as grey values.
at::Tensor ring(int64_t size, int gap_width = 0) {
  auto g = blank(size, size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double r = std::hypot(x - 10, y - 10);
      const bool in_gap = gap_width > 0 && std::abs(y - 10) < gap_width && x > 10;
      if (r <= 6 && r >= 3 && !in_gap) g[0][0][y][x] = 0.9f;
    }
  return g;
}

TEST(Silhouette, ARingIsFilledToADisk) {
  const auto mask = silhouette(ring(21), 0.5);
  for (int y = 0; y < 21; ++y)
    for (int x = 0; x < 21; ++x)
      EXPECT_EQ(mask[0][0][y][x].item<float>(), std::hypot(x - 10, y - 10) <= 6 ? 1.0f : 0.0f)
          << x << "," << y;
}

TEST(Silhouette, AnOpenRingStaysOpenAndDiagonalLeaksDoNotCount) {
  const auto open = ring(21, 2);
  EXPECT_TRUE(torch::equal(silhouette(open, 0.5), (open > 0.5).to(torch::kFloat32)));
  // A diamond outline: its inside touches the outside only corner to corner, which a
  // 4-connected path cannot cross, so the inside is a hole and is filled.
  auto diamond = blank(11, 11);
  for (int i = 0; i <= 4; ++i) {
    put(diamond, 5 + i, 1 + i);
    put(diamond, 5 - i, 1 + i);
    put(diamond, 5 + i, 9 - i);
    put(diamond, 5 - i, 9 - i);
  }
  const auto filled = silhouette(diamond, 0.5);
  EXPECT_EQ(filled[0][0][5][5].item<float>(), 1.0f);
  EXPECT_EQ(filled[0][0][0][0].item<float>(), 0.0f);
  // A U open at the picture's edge is not a hole either.
  auto u = blank(8, 8);
  for (int y = 0; y <= 5; ++y) {
    put(u, 2, y);
    put(u, 5, y);
  }
  for (int x = 2; x <= 5; ++x) put(u, x, 5);
  EXPECT_EQ(silhouette(u, 0.5)[0][0][2][3].item<float>(), 0.0f);
}

// The distance from each inside pixel to the nearest outside pixel, by brute force.
at::Tensor reference_distance(const at::Tensor& mask) {
  const int64_t h = mask.size(2), w = mask.size(3);
  auto out = torch::zeros_like(mask);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (mask[0][0][y][x].item<float>() < 0.5f) continue;
      double best = 1e9;
      for (int v = -1; v <= h; ++v)
        for (int u = -1; u <= w; ++u) {
          const bool outside = v < 0 || u < 0 || v >= h || u >= w || mask[0][0][v][u].item<float>() < 0.5f;
          if (outside) best = std::min(best, std::hypot(u - x, v - y));
        }
      out[0][0][y][x] = static_cast<float>(best);
    }
  return out;
}

TEST(DistanceTransform, ASquareIsDeepestAtItsCentre) {
  auto mask = blank(15, 15);
  mask.narrow(2, 4, 7).narrow(3, 4, 7).fill_(1.0f);  // rows and columns 4..10
  const auto d = distance_transform(mask);
  EXPECT_FLOAT_EQ(d[0][0][7][7].item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(d[0][0][4][4].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(d[0][0][5][5].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(d[0][0][0][0].item<float>(), 0.0f);
  const auto hint = distance_hint(mask);
  EXPECT_FLOAT_EQ(hint.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(hint[0][0][4][4].item<float>(), 0.25f);
}

TEST(DistanceTransform, MatchesBruteForceAndTheBorderCountsAsOutside) {
  std::mt19937 rng(7);
  auto mask = blank(12, 13);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 13; ++x)
      if (rng() % 4 != 0) put(mask, x, y);
  const auto d = distance_transform(mask);
  EXPECT_TRUE(torch::allclose(d, reference_distance(mask), 1e-5, 1e-5));
  EXPECT_FLOAT_EQ(distance_transform(torch::ones({1, 1, 5, 5}))[0][0][2][2].item<float>(), 3.0f);
  EXPECT_EQ(distance_hint(blank(6, 6)).abs().sum().item<float>(), 0.0f);
}

TEST(Hints, ABatchGivesWhatEachPictureGivesAlone) {
  auto batch = torch::cat({ring(21), ring(21, 2), torch::zeros({1, 1, 21, 21})}, 0);
  const auto masks = silhouette(batch, 0.5);
  const auto distances = distance_transform(masks);
  const auto edges = (batch > 0.5).to(torch::kFloat32);
  const auto acc = hough_accumulator(edges);
  for (int64_t b = 0; b < 3; ++b) {
    const auto one = batch.narrow(0, b, 1);
    EXPECT_TRUE(torch::equal(masks[b], silhouette(one, 0.5)[0]));
    EXPECT_TRUE(torch::allclose(distances[b], distance_transform(masks.narrow(0, b, 1))[0]));
    EXPECT_TRUE(torch::equal(acc[b], hough_accumulator(edges.narrow(0, b, 1))[0]));
  }
}

TEST(HintMap, EachKindIsItsOwnFunctionOfThePicture) {
  const auto picture = ring(21);
  HintMapOptions o;
  o.threshold = 0.5;
  EXPECT_TRUE(torch::equal(hint_map(picture, HintKind::Canny, o), canny(picture, o.canny)));
  EXPECT_TRUE(torch::equal(hint_map(picture, HintKind::Mixed, o), canny(picture, o.canny)));
  EXPECT_TRUE(torch::equal(hint_map(picture, HintKind::Scribble, o),
                           skeletonize((picture > 0.5).to(torch::kFloat32))));
  EXPECT_TRUE(torch::equal(hint_map(picture, HintKind::Hough, o),
                           draw_segments(hough_segments(canny(picture, o.canny), o.hough), 21, 21)));
  EXPECT_TRUE(torch::equal(hint_map(picture, HintKind::Mask, o), silhouette(picture, 0.5)));
  EXPECT_TRUE(torch::allclose(hint_map(picture, HintKind::Distance, o), distance_hint(silhouette(picture, 0.5))));
  // The object threshold: a faint ring (0.3) is an object above 0.2, nothing above 0.5.
  const auto faint = picture / 3.0;
  o.threshold = 0.2;
  EXPECT_TRUE(torch::equal(hint_map(faint, HintKind::Mask, o), silhouette(picture, 0.5)));
  o.threshold = 0.5;
  EXPECT_EQ(hint_map(faint, HintKind::Mask, o).sum().item<float>(), 0.0f);
  EXPECT_THROW(hint_map(torch::zeros({1, 3, 8, 8}), HintKind::Mask), std::invalid_argument);
}

// The GUI's torch-free entry points: a drawn outline means its filled region for mask
// hints and that region's distance map for distance hints; line kinds keep the strokes.
TEST(HintPreview, DrawnOutlinesAreFilledAndPicturesMapByKind) {
  const auto outline = ring(21);
  GrayPicture canvas{21, 21, {}};
  const auto binary = (outline > 0.5).to(torch::kFloat32).contiguous();
  canvas.pixels.assign(binary.data_ptr<float>(), binary.data_ptr<float>() + binary.numel());
  auto as_tensor = [](const GrayPicture& p) {
    return torch::tensor(p.pixels).view({1, 1, p.height, p.width});
  };
  EXPECT_TRUE(torch::equal(as_tensor(drawn_hint(canvas, HintKind::Mask)), silhouette(outline, 0.5)));
  EXPECT_TRUE(torch::allclose(as_tensor(drawn_hint(canvas, HintKind::Distance)),
                              distance_hint(silhouette(outline, 0.5))));
  for (HintKind kind : {HintKind::Canny, HintKind::Scribble, HintKind::Hough})
    EXPECT_EQ(drawn_hint(canvas, kind).pixels, canvas.pixels);
  GrayPicture picture{21, 21, {}};
  const auto grey = outline.contiguous();
  picture.pixels.assign(grey.data_ptr<float>(), grey.data_ptr<float>() + grey.numel());
  HintMapOptions o;
  o.threshold = 0.2;
  for (HintKind kind : {HintKind::Canny, HintKind::Hough, HintKind::Mask, HintKind::Distance})
    EXPECT_TRUE(torch::allclose(as_tensor(picture_hint(picture, kind, 100, 200, 0.2)), hint_map(outline, kind, o)))
        << to_string(kind);
  EXPECT_THROW(drawn_hint(GrayPicture{4, 4, {1.0f}}, HintKind::Mask), std::invalid_argument);
}

}  // namespace
}  // namespace difflab
