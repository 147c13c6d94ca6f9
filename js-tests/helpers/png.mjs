// Test images without fixture files.
import { crc32, deflateSync } from 'node:zlib';

/**
 * A real PNG (8-bit RGB) built byte by byte, so the test needs no fixture file: a gradient with a disc, or with
 * `noise: true` pseudo-random pixels stored uncompressed (`deflateLevel: 0`), for a file of a predictable, large size.
 */
export function makePng(width, height, { noise = false, deflateLevel } = {}) {
  const rows = [];
  let seed = 7;
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3); // leading 0: filter type None
    for (let x = 0; x < width; x++) {
      if (noise) {
        for (let c = 1; c <= 3; c++) row[x * 3 + c] = seed = (seed * 1103515245 + 12345) & 0xff;
        continue;
      }
      const inDisc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 3) ** 2;
      const pixel = inDisc ? [255, 255, 255] : [7, Math.round(120 + (100 * x) / width), Math.round(60 + (150 * y) / height)];
      row.set(pixel, 1 + x * 3);
    }
    rows.push(row);
  }
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, no filter method, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows), deflateLevel === undefined ? {} : { level: deflateLevel })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
