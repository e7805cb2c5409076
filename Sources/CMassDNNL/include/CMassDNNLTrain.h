// One 2-D convolution for training, run by oneDNN 2.6 (Debian libdnnl-dev): float32 NHWC activations, weights
// in PyTorch's layout [out, in, kh, kw] (reordered to and from the layout oneDNN picks on every call: they are
// small), forward, backward data (the input's gradient) and backward weights (the weights' and bias's
// gradients). Used by MassAutograd's conv2d.
#ifndef CMASS_DNNL_TRAIN_H
#define CMASS_DNNL_TRAIN_H

#include <stddef.h>

typedef struct cmass_dnnl_conv cmass_dnnl_conv;

// Builds the three primitives for `batch` images of `in_height`×`in_width`×`in_channels`. NULL on failure, with
// the reason in `error`. One convolution object serves one thread at a time.
cmass_dnnl_conv *cmass_dnnl_conv_create(int batch, int in_channels, int in_height, int in_width, int out_channels,
                                        int kernel_height, int kernel_width, int stride, int pad_top, int pad_left,
                                        int pad_bottom, int pad_right, int threads, char *error, size_t error_size);
// dst [batch, oh, ow, out] = src ⊛ weights + bias (bias may be NULL). 0 on failure.
int cmass_dnnl_conv_forward(cmass_dnnl_conv *conv, const float *src, const float *weights, const float *bias,
                            float *dst);
// diff_src [batch, h, w, in] = the input's gradient, overwritten. 0 on failure.
int cmass_dnnl_conv_backward_data(cmass_dnnl_conv *conv, const float *diff_dst, const float *weights,
                                  float *diff_src);
// diff_weights [out, in, kh, kw] and diff_bias [out] (may be NULL), overwritten. 0 on failure.
int cmass_dnnl_conv_backward_weights(cmass_dnnl_conv *conv, const float *src, const float *diff_dst,
                                     float *diff_weights, float *diff_bias);
// The implementations oneDNN picked (forward, backward data, backward weights), e.g. "jit:avx512_core".
const char *cmass_dnnl_conv_impl(const cmass_dnnl_conv *conv, int which);
void cmass_dnnl_conv_destroy(cmass_dnnl_conv *conv);

#endif
