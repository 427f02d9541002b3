/*
 * imageio.c - PNG and JPEG coding in memory over libpng 1.6 and libjpeg-turbo (see
 * imageio.h for the contract).
 *
 * Error handling: libpng and libjpeg report a fatal error by calling a handler that must
 * not return. The handlers here store the library's text and longjmp back to a setjmp in
 * a `*_guarded` function of this file, which returns a status; the public function then
 * frees whatever was allocated. All state that changes after setjmp lives in a struct
 * owned by the public function (the caller of the function that calls setjmp), so none
 * of it is indeterminate after the longjmp.
 */
#include "imageio.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
/* jpeglib.h needs stdio.h (FILE) and size_t first. */
#include <jerror.h>
#include <jpeglib.h>

/* Largest image decoded or encoded, in pixels (a 16384 x 8192 image); larger headers are
 * far more often corrupt than real, and would ask for gigabytes. */
#define IIO_MAX_PIXELS ((size_t)1 << 27)

/* Writes a formatted message into the caller's buffer (when there is one). */
static void set_message(char *message, size_t capacity, const char *format, ...) {
    if (!message || capacity == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, capacity, format, args);
    va_end(args);
}

/* Whether a width x height image is non-empty and has at most IIO_MAX_PIXELS pixels (so
 * that its byte count, at most 6 bytes a pixel, cannot overflow size_t). */
static int size_is_sane(size_t width, size_t height) {
    return width > 0 && height > 0 && width <= IIO_MAX_PIXELS / height;
}

/* A growable output buffer for the encoders. */
typedef struct growable {
    unsigned char *data;
    size_t size;
    size_t capacity;
} growable;

/* Appends `count` bytes; returns 0 when memory runs out. */
static int growable_append(growable *buffer, const void *bytes, size_t count) {
    if (count > SIZE_MAX - buffer->size) return 0;
    size_t needed = buffer->size + count;
    if (needed > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < needed) {
            if (capacity > SIZE_MAX / 2) {
                capacity = needed;
                break;
            }
            capacity *= 2;
        }
        unsigned char *grown = realloc(buffer->data, capacity);
        if (!grown) return 0;
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, bytes, count);
    buffer->size = needed;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* PNG                                                                                  */
/* ------------------------------------------------------------------------------------ */

/* Everything a PNG decode or encode owns; freed by the public function. */
typedef struct png_job {
    /* input (decode) */
    const unsigned char *input;
    size_t input_size;
    size_t offset;
    iio_png_mode mode;
    int channel; /* iio_png_decode_channel: the sample kept of each pixel; -1 for `mode` */
    /* output */
    unsigned char *pixels;
    png_bytep *rows;
    growable encoded;
    int width, height, channels, bit_depth;
    /* outcome of a longjmp: status and message */
    iio_status status;
    char *message;
    size_t message_capacity;
} png_job;

/* libpng's fatal error handler: keeps libpng's text (unless a more precise one was set
 * already) and jumps back to the guarded function's setjmp. */
static void png_job_error(png_structp png, png_const_charp text) {
    png_job *job = (png_job *)png_get_error_ptr(png);
    if (job->status == IIO_OK) {
        job->status = IIO_ERR_CORRUPT;
        set_message(job->message, job->message_capacity, "%s", text);
    }
    png_longjmp(png, 1);
}

/* Warnings (unknown chunks, a bad gamma value) do not stop decoding. */
static void png_job_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

/* libpng's read callback over the memory buffer; running past the end is a truncation. */
static void png_job_read(png_structp png, png_bytep out, png_size_t count) {
    png_job *job = (png_job *)png_get_io_ptr(png);
    if (count > job->input_size - job->offset) {
        job->status = IIO_ERR_CORRUPT;
        set_message(job->message, job->message_capacity,
                    "the PNG data ends early (truncated after %zu bytes)", job->input_size);
        png_error(png, "truncated");
    }
    memcpy(out, job->input + job->offset, count);
    job->offset += count;
}

/* A PNG colour type in words. */
static const char *png_color_name(int color) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray + alpha";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown colour type";
    }
}

/* Keeps sample `channel` of each of `count` interleaved pixels of `channels` samples of
 * `sample_bytes` bytes, packed at the start of `pixels`. In place: pixel i's sample moves to
 * i, never after where it was, so no sample is overwritten before it is read. */
static void keep_channel(unsigned char *pixels, size_t count, size_t channels, size_t channel, size_t sample_bytes) {
    if (sample_bytes == 1) {
        for (size_t i = 0; i < count; i++) pixels[i] = pixels[i * channels + channel];
    } else {
        for (size_t i = 0; i < count; i++) {
            const unsigned char *sample = pixels + 2 * (i * channels + channel);
            pixels[2 * i] = sample[0];
            pixels[2 * i + 1] = sample[1];
        }
    }
}

/* The decode itself, under setjmp; returns the status (the message is in the job). */
static iio_status png_decode_guarded(png_structp png, png_infop info, png_job *job) {
    if (setjmp(png_jmpbuf(png))) {
        return job->status == IIO_OK ? IIO_ERR_CORRUPT : job->status;
    }
    png_set_read_fn(png, job, png_job_read);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (!size_is_sane(width, height)) {
        job->status = IIO_ERR_UNSUPPORTED;
        set_message(job->message, job->message_capacity,
                    "the PNG is %u x %u pixels, more than the %zu this reader decodes", (unsigned)width,
                    (unsigned)height, (size_t)IIO_MAX_PIXELS);
        return job->status;
    }

    /* Samples per pixel as stored: gray 1, gray + alpha 2, palette 1, RGB 3, RGBA 4. */
    int stored = png_get_channels(png, info);
    int native_little_endian;
    {
        const uint16_t probe = 1;
        native_little_endian = *(const unsigned char *)&probe == 1;
    }
    if (job->channel >= 0) {
        if (job->channel >= stored) {
            job->status = IIO_ERR_NO_CHANNEL;
            set_message(job->message, job->message_capacity,
                        "channel %d was asked of a %s PNG of %d bits per sample, which has %d channel%s (0 ... %d)",
                        job->channel, png_color_name(color), depth, stored, stored == 1 ? "" : "s", stored - 1);
            return job->status;
        }
        /* All samples as stored: 1, 2 and 4-bit values become bytes, unscaled; palettes
         * stay indices; nothing is expanded, stripped or scaled. */
        if (depth < 8) png_set_packing(png);
        if (depth == 16 && native_little_endian) png_set_swap(png); /* PNG is big-endian */
    } else if (job->mode == IIO_PNG_IMAGE) {
        if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
        if (depth == 16) png_set_scale_16(png);
        /* Alpha (including palette and tRNS transparency) is dropped, not composited. */
        png_set_strip_alpha(png);
    } else {
        if (color & PNG_COLOR_MASK_COLOR && color != PNG_COLOR_TYPE_PALETTE) {
            job->status = IIO_ERR_COLOR_LABEL;
            set_message(job->message, job->message_capacity,
                        "the PNG is %s with %d bits per sample, not one value per pixel",
                        color == PNG_COLOR_TYPE_RGB ? "RGB" : "RGBA", depth);
            return job->status;
        }
        /* 1, 2 and 4-bit gray values and palette indices become bytes, unscaled. */
        if (depth < 8) png_set_packing(png);
        if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
        if (depth == 16 && native_little_endian) png_set_swap(png); /* PNG is big-endian */
    }
    int passes = png_set_interlace_handling(png);
    (void)passes;
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    int want_channels = job->channel >= 0 ? stored : job->mode == IIO_PNG_IMAGE ? 3 : 1;
    if (channels != want_channels || (out_depth != 8 && out_depth != 16)) {
        job->status = IIO_ERR_UNSUPPORTED;
        set_message(job->message, job->message_capacity,
                    "the PNG (color type %d, %d bits) decodes to %d channels of %d bits, not %d", color, depth,
                    channels, out_depth, want_channels);
        return job->status;
    }
    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)width * (size_t)channels * (size_t)(out_depth / 8)) {
        job->status = IIO_ERR_UNSUPPORTED;
        set_message(job->message, job->message_capacity, "unexpected PNG row size %zu for width %u",
                    row_bytes, (unsigned)width);
        return job->status;
    }
    job->pixels = malloc(row_bytes * height);
    job->rows = malloc(sizeof(png_bytep) * height);
    if (!job->pixels || !job->rows) {
        job->status = IIO_ERR_MEMORY;
        set_message(job->message, job->message_capacity, "out of memory for a %u x %u PNG", (unsigned)width,
                    (unsigned)height);
        return job->status;
    }
    for (png_uint_32 y = 0; y < height; y++) job->rows[y] = job->pixels + (size_t)y * row_bytes;
    png_read_image(png, job->rows);
    /* Reads up to IEND, so that a file cut after its pixel data still counts as truncated. */
    png_read_end(png, NULL);

    if (job->channel >= 0) {
        keep_channel(job->pixels, (size_t)width * height, (size_t)channels, (size_t)job->channel,
                     (size_t)(out_depth / 8));
        channels = 1;
        /* Gives back the other channels' memory; the packed samples stay where they are. */
        unsigned char *shrunk = realloc(job->pixels, (size_t)width * height * (size_t)(out_depth / 8));
        if (shrunk) job->pixels = shrunk;
    }
    job->width = (int)width;
    job->height = (int)height;
    job->channels = channels;
    job->bit_depth = out_depth;
    return IIO_OK;
}

/* iio_png_decode (`channel` -1) and iio_png_decode_channel (`channel` >= 0). */
static iio_status png_decode(const void *data, size_t size, iio_png_mode mode, int channel, iio_pixels *out,
                             char *message, size_t message_capacity) {
    if (!out || (!data && size > 0)) {
        set_message(message, message_capacity, "iio_png_decode: missing buffer");
        return IIO_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_message(message, message_capacity, "no PNG signature");
        return IIO_ERR_NOT_IMAGE;
    }
    png_job job;
    memset(&job, 0, sizeof(job));
    job.input = data;
    job.input_size = size;
    job.mode = mode;
    job.channel = channel;
    job.message = message;
    job.message_capacity = message_capacity;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_job_error, png_job_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        set_message(message, message_capacity, "out of memory starting libpng");
        return IIO_ERR_MEMORY;
    }
    iio_status status = png_decode_guarded(png, info, &job);
    png_destroy_read_struct(&png, &info, NULL);
    free(job.rows);
    if (status != IIO_OK) {
        free(job.pixels);
        return status;
    }
    out->data = job.pixels;
    out->size = (size_t)job.width * (size_t)job.height * (size_t)job.channels * (size_t)(job.bit_depth / 8);
    out->width = job.width;
    out->height = job.height;
    out->channels = job.channels;
    out->bit_depth = job.bit_depth;
    return IIO_OK;
}

iio_status iio_png_decode(const void *data, size_t size, iio_png_mode mode, iio_pixels *out, char *message,
                          size_t message_capacity) {
    return png_decode(data, size, mode, -1, out, message, message_capacity);
}

iio_status iio_png_decode_channel(const void *data, size_t size, int channel, iio_pixels *out, char *message,
                                  size_t message_capacity) {
    if (channel < 0) {
        if (out) memset(out, 0, sizeof(*out));
        set_message(message, message_capacity, "channel %d was asked; channels count from 0", channel);
        return IIO_ERR_NO_CHANNEL;
    }
    return png_decode(data, size, IIO_PNG_LABEL, channel, out, message, message_capacity);
}

/* libpng's write callback: appends to the job's growable buffer. */
static void png_job_write(png_structp png, png_bytep bytes, png_size_t count) {
    png_job *job = (png_job *)png_get_io_ptr(png);
    if (!growable_append(&job->encoded, bytes, count)) {
        job->status = IIO_ERR_MEMORY;
        set_message(job->message, job->message_capacity, "out of memory writing a PNG");
        png_error(png, "out of memory");
    }
}

static void png_job_flush(png_structp png) { (void)png; }

static iio_status png_encode_guarded(png_structp png, png_infop info, png_job *job, const unsigned char *pixels,
                                     int width, int height, int channels) {
    if (setjmp(png_jmpbuf(png))) {
        return job->status == IIO_OK ? IIO_ERR_ARGUMENT : job->status;
    }
    png_set_write_fn(png, job, png_job_write, png_job_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row_bytes = (size_t)width * (size_t)channels;
    job->rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!job->rows) {
        job->status = IIO_ERR_MEMORY;
        set_message(job->message, job->message_capacity, "out of memory writing a PNG");
        return job->status;
    }
    for (int y = 0; y < height; y++) job->rows[y] = (png_bytep)(pixels + (size_t)y * row_bytes);
    png_write_image(png, job->rows);
    png_write_end(png, NULL);
    return IIO_OK;
}

iio_status iio_png_encode(const unsigned char *pixels, int width, int height, int channels, iio_buffer *out,
                          char *message, size_t message_capacity) {
    if (!out || !pixels) {
        set_message(message, message_capacity, "iio_png_encode: missing buffer");
        return IIO_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    if (channels != 1 && channels != 3) {
        set_message(message, message_capacity, "a PNG is written from 1 (gray) or 3 (RGB) channels, not %d",
                    channels);
        return IIO_ERR_ARGUMENT;
    }
    if (width <= 0 || height <= 0 || !size_is_sane((size_t)width, (size_t)height)) {
        set_message(message, message_capacity, "cannot write a PNG of %d x %d pixels", width, height);
        return IIO_ERR_ARGUMENT;
    }
    png_job job;
    memset(&job, 0, sizeof(job));
    job.message = message;
    job.message_capacity = message_capacity;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, png_job_error, png_job_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        set_message(message, message_capacity, "out of memory starting libpng");
        return IIO_ERR_MEMORY;
    }
    iio_status status = png_encode_guarded(png, info, &job, pixels, width, height, channels);
    png_destroy_write_struct(&png, &info);
    free(job.rows);
    if (status != IIO_OK) {
        free(job.encoded.data);
        return status;
    }
    out->data = job.encoded.data;
    out->size = job.encoded.size;
    return IIO_OK;
}

/* ------------------------------------------------------------------------------------ */
/* JPEG                                                                                 */
/* ------------------------------------------------------------------------------------ */

/* libjpeg's error manager extended with the way back (jump) and the outcome. */
typedef struct jpeg_guard {
    struct jpeg_error_mgr base; /* first, so that cinfo->err points at the guard */
    jmp_buf jump;
    iio_status status;
    iio_status fallback; /* status for library errors: corrupt (decode) or argument (encode) */
    char *message;
    size_t message_capacity;
} jpeg_guard;

/* Stores libjpeg's message and status, then jumps back to the guarded function. */
static void jpeg_guard_fail(j_common_ptr cinfo) {
    jpeg_guard *guard = (jpeg_guard *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    int code = cinfo->err->msg_code;
    if (code == JERR_BAD_PRECISION) {
        guard->status = IIO_ERR_UNSUPPORTED;
    } else if (code == JERR_OUT_OF_MEMORY) {
        guard->status = IIO_ERR_MEMORY;
    } else {
        guard->status = guard->fallback;
    }
    set_message(guard->message, guard->message_capacity, "%s", text);
    longjmp(guard->jump, 1);
}

/* libjpeg's message hook: a premature end of data is an error here (libjpeg would fill the
 * rest of the image with gray); other warnings and trace messages are ignored. */
static void jpeg_guard_emit(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_guard_fail(cinfo);
}

static void jpeg_guard_init(jpeg_guard *guard, iio_status fallback, char *message, size_t capacity) {
    memset(guard, 0, sizeof(*guard));
    jpeg_std_error(&guard->base);
    guard->base.error_exit = jpeg_guard_fail;
    guard->base.emit_message = jpeg_guard_emit;
    guard->fallback = fallback;
    guard->message = message;
    guard->message_capacity = capacity;
}

/* What a JPEG decode owns. */
typedef struct jpeg_decode_job {
    unsigned char *pixels;
    unsigned char *row; /* one CMYK scanline */
    int width, height;
} jpeg_decode_job;

/* (a * b) / 255 rounded, as PIL's MULDIV255. */
static unsigned char muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (unsigned char)(((t >> 8) + t) >> 8);
}

static iio_status jpeg_decode_guarded(struct jpeg_decompress_struct *cinfo, jpeg_guard *guard,
                                      jpeg_decode_job *job, const unsigned char *data, size_t size) {
    if (setjmp(guard->jump)) return guard->status;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);

    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    /* The size is checked before jpeg_start_decompress, which allocates for the whole image
     * (a progressive JPEG's coefficients, two bytes a sample) however short the file is. */
    jpeg_calc_output_dimensions(cinfo);
    size_t width = cinfo->output_width;
    size_t height = cinfo->output_height;
    if (!size_is_sane(width, height)) {
        guard->status = IIO_ERR_UNSUPPORTED;
        set_message(guard->message, guard->message_capacity,
                    "the JPEG is %zu x %zu pixels, more than the %zu this reader decodes", width, height,
                    (size_t)IIO_MAX_PIXELS);
        return guard->status;
    }
    jpeg_start_decompress(cinfo);

    int components = cinfo->output_components;
    if (components != (cmyk ? 4 : 3)) {
        guard->status = IIO_ERR_UNSUPPORTED;
        set_message(guard->message, guard->message_capacity, "the JPEG decodes to %d components", components);
        return guard->status;
    }
    job->pixels = malloc(width * height * 3);
    if (cmyk) job->row = malloc(width * 4);
    if (!job->pixels || (cmyk && !job->row)) {
        guard->status = IIO_ERR_MEMORY;
        set_message(guard->message, guard->message_capacity, "out of memory for a %zu x %zu JPEG", width, height);
        return guard->status;
    }
    /* Adobe's CMYK JPEGs store inverted values; others store plain CMYK. */
    int inverted = cinfo->saw_Adobe_marker;
    while (cinfo->output_scanline < cinfo->output_height) {
        size_t y = cinfo->output_scanline;
        unsigned char *target = job->pixels + y * width * 3;
        JSAMPROW row = cmyk ? job->row : target;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            guard->status = IIO_ERR_CORRUPT;
            set_message(guard->message, guard->message_capacity, "the JPEG data ends early (row %zu of %zu)", y,
                        height);
            return guard->status;
        }
        if (cmyk) {
            for (size_t x = 0; x < width; x++) {
                const unsigned char *s = job->row + 4 * x;
                unsigned k = inverted ? s[3] : 255u - s[3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = inverted ? s[c] : 255u - s[c];
                    target[3 * x + (size_t)c] = muldiv255(v, k);
                }
            }
        }
    }
    jpeg_finish_decompress(cinfo);
    job->width = (int)width;
    job->height = (int)height;
    return IIO_OK;
}

iio_status iio_jpeg_decode(const void *data, size_t size, iio_pixels *out, char *message, size_t message_capacity) {
    if (!out || (!data && size > 0)) {
        set_message(message, message_capacity, "iio_jpeg_decode: missing buffer");
        return IIO_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    const unsigned char *bytes = data;
    if (size < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF) {
        set_message(message, message_capacity, "no JPEG signature");
        return IIO_ERR_NOT_IMAGE;
    }
    if (size > ULONG_MAX) {
        set_message(message, message_capacity, "the JPEG data is too large");
        return IIO_ERR_UNSUPPORTED;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard;
    jpeg_decode_job job;
    memset(&cinfo, 0, sizeof(cinfo));
    memset(&job, 0, sizeof(job));
    jpeg_guard_init(&guard, IIO_ERR_CORRUPT, message, message_capacity);
    cinfo.err = &guard.base;
    iio_status status = jpeg_decode_guarded(&cinfo, &guard, &job, bytes, size);
    jpeg_destroy_decompress(&cinfo);
    free(job.row);
    if (status != IIO_OK) {
        free(job.pixels);
        return status;
    }
    out->data = job.pixels;
    out->size = (size_t)job.width * (size_t)job.height * 3;
    out->width = job.width;
    out->height = job.height;
    out->channels = 3;
    out->bit_depth = 8;
    return IIO_OK;
}

/* A libjpeg destination that appends to a growable buffer this file owns, so that the
 * buffer is freed on every path (jpeg_mem_dest's can leak when compression fails). */
typedef struct jpeg_sink {
    struct jpeg_destination_mgr base; /* first, so that cinfo->dest points at the sink */
    growable encoded;
    JOCTET chunk[16384];
} jpeg_sink;

static void jpeg_sink_init(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    sink->base.next_output_byte = sink->chunk;
    sink->base.free_in_buffer = sizeof(sink->chunk);
}

static boolean jpeg_sink_empty(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    if (!growable_append(&sink->encoded, sink->chunk, sizeof(sink->chunk))) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    sink->base.next_output_byte = sink->chunk;
    sink->base.free_in_buffer = sizeof(sink->chunk);
    return TRUE;
}

static void jpeg_sink_term(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    size_t count = sizeof(sink->chunk) - sink->base.free_in_buffer;
    if (!growable_append(&sink->encoded, sink->chunk, count)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
}

static iio_status jpeg_encode_guarded(struct jpeg_compress_struct *cinfo, jpeg_guard *guard, jpeg_sink *sink,
                                      const unsigned char *pixels, int width, int height, int channels,
                                      int quality) {
    if (setjmp(guard->jump)) return guard->status;
    jpeg_create_compress(cinfo);
    sink->base.init_destination = jpeg_sink_init;
    sink->base.empty_output_buffer = jpeg_sink_empty;
    sink->base.term_destination = jpeg_sink_term;
    cinfo->dest = &sink->base;
    cinfo->image_width = (JDIMENSION)width;
    cinfo->image_height = (JDIMENSION)height;
    cinfo->input_components = channels;
    cinfo->in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    size_t row_bytes = (size_t)width * (size_t)channels;
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo->next_scanline * row_bytes);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return IIO_OK;
}

iio_status iio_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                           iio_buffer *out, char *message, size_t message_capacity) {
    if (!out || !pixels) {
        set_message(message, message_capacity, "iio_jpeg_encode: missing buffer");
        return IIO_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    if (channels != 1 && channels != 3) {
        set_message(message, message_capacity, "a JPEG is written from 1 (gray) or 3 (RGB) channels, not %d",
                    channels);
        return IIO_ERR_ARGUMENT;
    }
    if (quality < 1 || quality > 100) {
        set_message(message, message_capacity, "JPEG quality must be 1 ... 100, not %d", quality);
        return IIO_ERR_ARGUMENT;
    }
    /* JPEG's frame header stores sizes in 16 bits. */
    if (width <= 0 || height <= 0 || width > 65500 || height > 65500 ||
        !size_is_sane((size_t)width, (size_t)height)) {
        set_message(message, message_capacity, "cannot write a JPEG of %d x %d pixels (at most 65500 a side)",
                    width, height);
        return IIO_ERR_ARGUMENT;
    }
    struct jpeg_compress_struct cinfo;
    jpeg_guard guard;
    jpeg_sink *sink = calloc(1, sizeof(jpeg_sink));
    if (!sink) {
        set_message(message, message_capacity, "out of memory starting libjpeg");
        return IIO_ERR_MEMORY;
    }
    memset(&cinfo, 0, sizeof(cinfo));
    jpeg_guard_init(&guard, IIO_ERR_ARGUMENT, message, message_capacity);
    cinfo.err = &guard.base;
    iio_status status = jpeg_encode_guarded(&cinfo, &guard, sink, pixels, width, height, channels, quality);
    jpeg_destroy_compress(&cinfo);
    if (status != IIO_OK) {
        free(sink->encoded.data);
        free(sink);
        return status;
    }
    out->data = sink->encoded.data;
    out->size = sink->encoded.size;
    free(sink);
    return IIO_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Layout                                                                               */
/* ------------------------------------------------------------------------------------ */

iio_status iio_to_planar(iio_pixels *pixels, char *message, size_t message_capacity) {
    if (!pixels || !pixels->data) {
        set_message(message, message_capacity, "iio_to_planar: missing pixels");
        return IIO_ERR_ARGUMENT;
    }
    if (pixels->bit_depth != 8 || pixels->channels < 1) {
        set_message(message, message_capacity, "iio_to_planar: needs 8-bit samples, not %d-bit", pixels->bit_depth);
        return IIO_ERR_ARGUMENT;
    }
    size_t channels = (size_t)pixels->channels;
    if (channels == 1) return IIO_OK;
    size_t count = (size_t)pixels->width * (size_t)pixels->height;
    unsigned char *planes = malloc(count * channels);
    if (!planes) {
        set_message(message, message_capacity, "out of memory rearranging %zu pixels", count);
        return IIO_ERR_MEMORY;
    }
    const unsigned char *source = pixels->data;
    if (channels == 3) {
        unsigned char *r = planes, *g = planes + count, *b = planes + 2 * count;
        for (size_t i = 0; i < count; i++) {
            r[i] = source[3 * i];
            g[i] = source[3 * i + 1];
            b[i] = source[3 * i + 2];
        }
    } else {
        for (size_t c = 0; c < channels; c++) {
            unsigned char *plane = planes + c * count;
            for (size_t i = 0; i < count; i++) plane[i] = source[channels * i + c];
        }
    }
    free(pixels->data);
    pixels->data = planes;
    return IIO_OK;
}

void iio_free(void *pointer) { free(pointer); }

#define IIO_STRINGIFY_(x) #x
#define IIO_STRINGIFY(x) IIO_STRINGIFY_(x)

const char *iio_library_versions(void) {
    return "libpng " PNG_LIBPNG_VER_STRING ", libjpeg " IIO_STRINGIFY(JPEG_LIB_VERSION);
}
