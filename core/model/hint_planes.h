// The planes of a ControlNet hint, one per kind (torch-free, so the GUI shares them): a hint
// of one kind fills its own plane at the data's resolution and leaves the others zero, so
// one network can learn several kinds and knows which one it is given.
//
//   0 canny edges (0/1)   1 scribbles (0/1)   2 Hough segments (0/1)
//   3 silhouette (0/1)    4 distance map ([0, 1], 1 at the shape's deepest point)
//
// Checkpoints written before the last three kinds existed have 2 planes; their hint
// encoder is widened on loading with zero weights for the new planes (which so change
// nothing), see load_controlnet.
#pragma once

#include "core/config/enums.h"

namespace difflab {

constexpr int kHintChannels = 5;
// Hint planes of ControlNet checkpoints older than the Hough, mask and distance kinds.
constexpr int kLegacyHintChannels = 2;

// The plane a hint of `kind` goes to; mixed (canny or scribble per image) counts as canny.
constexpr int hint_plane(HintKind kind) {
  switch (kind) {
    case HintKind::Scribble: return 1;
    case HintKind::Hough: return 2;
    case HintKind::Mask: return 3;
    case HintKind::Distance: return 4;
    case HintKind::Canny:
    case HintKind::Mixed:
    case HintKind::Count: break;
  }
  return 0;
}

// True for the kinds whose hint is a thin line drawing (canny, scribble, Hough, mixed) rather
// than a filled region (mask, distance).
constexpr bool hint_is_lines(HintKind kind) {
  return kind != HintKind::Mask && kind != HintKind::Distance;
}

}  // namespace difflab
