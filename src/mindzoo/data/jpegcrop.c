/* Decode one rectangle of a JPEG to RGB with the system's libjpeg-turbo (SIMD).
 *
 * Loaded with ctypes by mindzoo/data/cropdecode.py; no Python headers needed.
 * The output is bit-identical to decoding the whole image and cutting the
 * rectangle out: rows above the crop are skipped (entropy-decoded only), rows
 * below are never read, and jpeg_crop_scanline limits the IDCT and colour
 * conversion to the crop's columns, widened by MARGIN pixels each side so that
 * the chroma upsampling of the crop's edge columns sees the same neighbours as a
 * full decode does (without the margin, edge columns differ by up to ~14).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

#define MARGIN 2

struct failure {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void fail(j_common_ptr info) {
  struct failure *f = (struct failure *)info->err;
  f->mgr.format_message(info, f->message);
  longjmp(f->jump, 1);
}

static void quiet(j_common_ptr info, int level) { (void)info; (void)level; }

static void open_source(struct jpeg_decompress_struct *info, struct failure *f, const unsigned char *data,
                        unsigned long size) {
  info->err = jpeg_std_error(&f->mgr);
  f->mgr.error_exit = fail;
  f->mgr.emit_message = quiet; /* warnings (e.g. extraneous bytes) do not stop a decode */
  f->message[0] = '\0';
  jpeg_create_decompress(info);
  jpeg_mem_src(info, data, size);
}

/* Width and height of a JPEG that decodes to RGB (YCbCr, RGB or greyscale); 0, or -1 with `message`
 * set, for one that does not (CMYK/YCCK: the caller falls back to a full decoder). */
int mz_jpeg_size(const unsigned char *data, unsigned long size, int *width, int *height, char *message) {
  struct jpeg_decompress_struct info;
  struct failure f;
  if (setjmp(f.jump)) {
    jpeg_destroy_decompress(&info);
    strcpy(message, f.message);
    return -1;
  }
  open_source(&info, &f, data, size);
  jpeg_read_header(&info, TRUE);
  *width = (int)info.image_width;
  *height = (int)info.image_height;
  int rgb = info.jpeg_color_space == JCS_YCbCr || info.jpeg_color_space == JCS_RGB ||
            info.jpeg_color_space == JCS_GRAYSCALE;
  jpeg_destroy_decompress(&info);
  return rgb ? 1 : 0;
}

/* Decode rows [y, y+h) and columns [x, x+w) into `out` (h*w*3 bytes, RGB). 0, or -1 with `message`. */
int mz_jpeg_crop(const unsigned char *data, unsigned long size, int x, int y, int w, int h, unsigned char *out,
                 char *message) {
  struct jpeg_decompress_struct info;
  struct failure f;
  unsigned char *volatile row = NULL;
  if (setjmp(f.jump)) {
    jpeg_destroy_decompress(&info);
    free(row);
    strcpy(message, f.message);
    return -1;
  }
  open_source(&info, &f, data, size);
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > (int)info.output_width || y + h > (int)info.output_height) {
    snprintf(f.message, sizeof f.message, "crop %dx%d+%d+%d outside the %ux%u image", w, h, x, y,
             info.output_width, info.output_height);
    longjmp(f.jump, 1);
  }
  int left = x > MARGIN ? x - MARGIN : 0;
  int right = x + w + MARGIN < (int)info.output_width ? x + w + MARGIN : (int)info.output_width;
  JDIMENSION offset = (JDIMENSION)left, width = (JDIMENSION)(right - left);
  jpeg_crop_scanline(&info, &offset, &width); /* widens to iMCU boundaries */
  if (y > 0)
    jpeg_skip_scanlines(&info, (JDIMENSION)y);
  row = malloc((size_t)width * 3);
  if (row == NULL) {
    strcpy(f.message, "out of memory");
    longjmp(f.jump, 1);
  }
  for (int r = 0; r < h; r++) {
    JSAMPROW rows[1] = {row};
    if (jpeg_read_scanlines(&info, rows, 1) != 1) {
      strcpy(f.message, "premature end of JPEG data");
      longjmp(f.jump, 1);
    }
    memcpy(out + (size_t)r * w * 3, row + (size_t)(x - (int)offset) * 3, (size_t)w * 3);
  }
  free(row);
  jpeg_abort_decompress(&info); /* the rows below the crop are never decoded */
  jpeg_destroy_decompress(&info);
  return 0;
}
