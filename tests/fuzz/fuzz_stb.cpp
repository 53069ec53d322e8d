// The stb implementations the readers call, compiled here with the sanitizers instead of
// taken from Debian's libstb (the same headers, the same version), so that ASan and UBSan
// check the image decoders and the resizer too.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
