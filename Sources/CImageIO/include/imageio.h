/*
 * imageio.h - PNG and JPEG coding in memory, over libpng and libjpeg-turbo.
 *
 * Implementation detail of SegTTT with no stable API: Swift's `ImageIO` is the interface.
 * Pure C, so that Swift imports it directly. Every fallible function returns an
 * `iio_status`, writes its result through an out-parameter, and on failure writes a
 * NUL-terminated message into the caller's `message` buffer. libpng and libjpeg report
 * errors by longjmp; each function here catches them with its own setjmp, so no longjmp
 * ever crosses into the caller. Every buffer returned here is new: free it with `iio_free`.
 */
#ifndef SEGTTT_IMAGEIO_H
#define SEGTTT_IMAGEIO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of a call; `IIO_OK` or the kind of failure the message describes. */
typedef enum iio_status {
    IIO_OK = 0,
    /* The bytes start with neither the PNG nor the JPEG signature. */
    IIO_ERR_NOT_IMAGE = 1,
    /* A PNG or JPEG whose data is damaged or ends early. */
    IIO_ERR_CORRUPT = 2,
    /* A valid file this layer does not decode (12-bit JPEG, too many pixels). */
    IIO_ERR_UNSUPPORTED = 3,
    /* A PNG with colour channels (RGB/RGBA) where one value per pixel was asked for (read
     * one of its channels with iio_png_decode_channel instead). */
    IIO_ERR_COLOR_LABEL = 4,
    /* Arguments out of range (quality, channels, sizes) or a missing pointer. */
    IIO_ERR_ARGUMENT = 5,
    /* An allocation failed. */
    IIO_ERR_MEMORY = 6,
    /* A channel the PNG does not have (channel 1 of a gray PNG, 3 of an RGB one, or < 0). */
    IIO_ERR_NO_CHANNEL = 7
} iio_status;

/* What a PNG decode should produce. */
typedef enum iio_png_mode {
    /* An 8-bit RGB image: gray is replicated, a palette expanded, alpha dropped, 16 bits
     * scaled to 8. */
    IIO_PNG_IMAGE = 0,
    /* One raw value per pixel: gray values as stored (1 to 8 bits as bytes, 16 bits as
     * native-endian uint16), palette indices as they are (not expanded), alpha dropped.
     * RGB and RGBA files fail with IIO_ERR_COLOR_LABEL. */
    IIO_PNG_LABEL = 1
} iio_png_mode;

/* Decoded pixels, row-major and interleaved: `height` rows of `width` pixels of
 * `channels` samples of `bit_depth` bits (8: unsigned char; 16: native-endian
 * unsigned short); after iio_to_planar, `channels` planes of `height` rows instead. */
typedef struct iio_pixels {
    unsigned char *data;
    size_t size; /* bytes in `data` */
    int width;
    int height;
    int channels; /* 1 or 3 */
    int bit_depth; /* 8 or 16 */
} iio_pixels;

/* An encoded file in memory. */
typedef struct iio_buffer {
    unsigned char *data;
    size_t size;
} iio_buffer;

/* The longest message a function writes, terminator included; a buffer this size never
 * truncates. */
#define IIO_MESSAGE_CAPACITY 512

/* Decodes a PNG held in `data[0 ..< size]` as `mode` asks into `out` (whose `data` the
 * caller frees with iio_free). On failure `out` is left empty. */
iio_status iio_png_decode(const void *data, size_t size, iio_png_mode mode, iio_pixels *out, char *message,
                          size_t message_capacity);

/* Decodes sample `channel` of every pixel of a PNG held in `data[0 ..< size]`, at the
 * file's own depth, into one-channel pixels `out`: 1 to 8-bit samples as bytes (unscaled),
 * 16-bit samples as native-endian uint16. Channels count from 0 in the order the file
 * stores them: gray (then alpha), a palette index (not its colour), or red, green, blue
 * (then alpha). It exists for labels kept in one channel of a colour PNG (SYNTHIA's class
 * ids are the red channel of 16-bit RGB files), which IIO_PNG_LABEL refuses and
 * IIO_PNG_IMAGE would scale to 8 bits. A channel the file lacks fails with
 * IIO_ERR_NO_CHANNEL, whose message says how many it has. */
iio_status iio_png_decode_channel(const void *data, size_t size, int channel, iio_pixels *out, char *message,
                                  size_t message_capacity);

/* Decodes a baseline or progressive 8-bit JPEG (gray, YCbCr, RGB, CMYK, YCCK) held in
 * `data[0 ..< size]` into 8-bit RGB pixels `out`. A file that ends early is an error,
 * not a partly gray image. */
iio_status iio_jpeg_decode(const void *data, size_t size, iio_pixels *out, char *message, size_t message_capacity);

/* Encodes 8-bit pixels (`channels` 1: gray, 3: RGB), `height` rows of `width * channels`
 * bytes, as a PNG file in `out`. */
iio_status iio_png_encode(const unsigned char *pixels, int width, int height, int channels, iio_buffer *out,
                          char *message, size_t message_capacity);

/* Encodes 8-bit pixels (`channels` 1: gray, 3: RGB) as a baseline JPEG of `quality`
 * 1 ... 100 (libjpeg's scale; 4:2:0 chroma subsampling for RGB) in `out`. */
iio_status iio_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                           iio_buffer *out, char *message, size_t message_capacity);

/* Rearranges 8-bit interleaved pixels (row-major [H, W, C]) into planes ([C, H, W]), the
 * layout of image tensors, in a new buffer that replaces `pixels->data`. Done here, once,
 * in plain C, so that the frame-decoding thread needs no libtorch kernel for it (small
 * parallel kernels are slow on a thread that shares the cores with the model). */
iio_status iio_to_planar(iio_pixels *pixels, char *message, size_t message_capacity);

/* Frees a buffer returned by this layer (`iio_pixels.data`, `iio_buffer.data`); NULL is
 * allowed. */
void iio_free(void *pointer);

/* The libpng and libjpeg versions linked, e.g. "libpng 1.6.39, libjpeg 62". */
const char *iio_library_versions(void);

#ifdef __cplusplus
}
#endif

#endif /* SEGTTT_IMAGEIO_H */
