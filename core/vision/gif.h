// Animated GIF (GIF89a) writer for trajectory exports. No torch, no GL.
//
// All frames share one global palette of at most 256 colours: the exact colours when the
// animation has no more than 256 (grey x_t / x̂₀ frames always do), otherwise a median cut
// of the colours weighted by how often they occur. giflib writes the file (LZW coding,
// blocks, extensions). The animation loops (NETSCAPE2.0 extension).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/util/paths.h"

#include "core/vision/png.h"

namespace difflab {

struct GifOptions {
  int delay_cs = 8;       // time each frame is shown, in hundredths of a second
  int last_delay_cs = 150;  // the final frame stays longer so the result can be seen
  bool loop = true;
};

// Frames must all have the same size; 1, 3 or 4 channels (alpha is ignored).
// Writes atomically (temp file + rename); throws std::runtime_error naming the path (and
// giflib's own words, GifErrorString, when giflib fails).
// IfExists::Refuse keeps a file already at `path`.
void write_gif(const std::string& path, const std::vector<Image8>& frames, const GifOptions& options = {},
               IfExists if_exists = IfExists::Replace);

// The encoder itself, for tests: the bytes of the whole file.
std::vector<uint8_t> encode_gif(const std::vector<Image8>& frames, const GifOptions& options = {});

}  // namespace difflab
