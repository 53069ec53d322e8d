// The difflab-cli sub-commands, one file each. Each returns the process exit code.
#pragma once

namespace difflab::cli {

int cmd_train(int argc, char** argv);
int cmd_sample(int argc, char** argv);
int cmd_schedule(int argc, char** argv);
int cmd_dataset(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_train_classifier(int argc, char** argv);
int cmd_train_controlnet(int argc, char** argv);
int cmd_eval_controlnet(int argc, char** argv);
int cmd_canny(int argc, char** argv);
int cmd_scribble(int argc, char** argv);
int cmd_hint(int argc, char** argv);
int cmd_export(int argc, char** argv);

}  // namespace difflab::cli
