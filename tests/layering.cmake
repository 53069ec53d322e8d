# The layer rules of shared/STYLE.md and ARCHITECTURE.md ("Layers"), checked on the sources:
#   - core/ includes no ImGui, OpenGL, GLFW or glad header (a headless CLI links only core/);
#   - core/sampling includes nothing from core/eval or core/train (samplers get a ready model
#     and guidance, never paths; callers load checkpoints and classifiers);
#   - ui/ includes no torch header (the GUI sees CPU snapshots only).
# Usage: cmake -DSRC=<repository> [-DWORK=<scratch folder>] -P layering.cmake
# With WORK it first checks itself: a scratch tree with one violation per rule must fail
# every rule, so a broken pattern cannot pass silently.
if(NOT SRC)
  message(FATAL_ERROR "layering.cmake: pass -DSRC=<repository>")
endif()

set(kInclude "^[ \t]*#[ \t]*include[ \t]*")
set(kGuiHeader "${kInclude}[<\"](imgui|GL/|GLFW/|glad/|backends/imgui)")
set(kUpperCore "${kInclude}\"core/(eval|train)/")
set(kTorchHeader "${kInclude}[<\"](torch/|ATen/|c10/)")

# Appends "<file>: <line>" to ${out} for every line of the C++ files under root/folder that
# matches `pattern`.
function(find_includes root folder pattern out)
  file(GLOB_RECURSE files "${root}/${folder}/*.h" "${root}/${folder}/*.hpp"
       "${root}/${folder}/*.cpp" "${root}/${folder}/*.cc")
  set(found ${${out}})
  foreach(f IN LISTS files)
    file(STRINGS "${f}" lines REGEX "${pattern}")
    foreach(line IN LISTS lines)
      file(RELATIVE_PATH rel "${root}" "${f}")
      string(STRIP "${line}" line)
      list(APPEND found "${rel}: ${line}")
    endforeach()
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

# Every violation of the three rules in the tree at root.
function(check_layers root out)
  set(v "")
  find_includes("${root}" core "${kGuiHeader}" v)
  find_includes("${root}" core/sampling "${kUpperCore}" v)
  find_includes("${root}" ui "${kTorchHeader}" v)
  set(${out} ${v} PARENT_SCOPE)
endfunction()

if(WORK)
  set(fake "${WORK}/layering_selftest")
  file(REMOVE_RECURSE "${fake}")
  file(WRITE "${fake}/core/vision/a.cpp" "#include <vector>\n#include <imgui.h>\n")
  file(WRITE "${fake}/core/sampling/b.h" "#pragma once\n  # include \"core/train/trainer.h\"\n")
  file(WRITE "${fake}/core/eval/fine.cpp" "#include \"core/train/checkpoint.h\"\n")
  file(WRITE "${fake}/ui/c.cpp" "#include \"ui/panels.h\"\n#include <torch/torch.h>\n")
  check_layers("${fake}" selftest)
  list(LENGTH selftest n)
  if(NOT n EQUAL 3)
    message(FATAL_ERROR "layering.cmake self-test: expected 3 violations in ${fake}, found "
                        "${n}: ${selftest}")
  endif()
endif()

check_layers("${SRC}" violations)
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layer rules broken (see tests/layering.cmake):\n  ${text}")
endif()
message(STATUS "layering: core/ has no GUI header, core/sampling no core/eval or core/train, "
               "ui/ no torch header")
