#!/usr/bin/env python3
"""png.py - read a PNG screenshot with no library beyond zlib.

    png.py info FILE                  "WIDTH HEIGHT COLORS INK" (INK: share of
                                      pixels that are not the background)
    png.py crop FILE X Y W H OUT      write that region as a new PNG

Handles what Chromium writes: 8-bit RGB or RGBA, not interlaced.  Anything
else, or a damaged file (bad signature, CRC, truncated data), is an error
naming the file.
"""
import struct
import sys
import zlib


def read(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('%s: not a PNG file' % path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError('%s: truncated chunk header' % path)
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise ValueError('%s: truncated %r chunk' % (path, kind))
        (crc,) = struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            raise ValueError('%s: bad CRC in %r chunk' % (path, kind))
        if kind == b'IHDR':
            hdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
        pos += 12 + n
    if hdr is None:
        raise ValueError('%s: no IHDR' % path)
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError('%s: unsupported PNG (depth %d, color type %d, interlace %d)' % (path, depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError('%s: image data is %d bytes, expected %d' % (path, len(raw), h * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        elif f != 0:
            raise ValueError('%s: bad filter %d on row %d' % (path, f, y))
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def write(path, w, h, bpp, rows):
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff)
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2 if bpp == 3 else 6, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def main(argv):
    if len(argv) >= 3 and argv[1] == 'info':
        w, h, bpp, rows = read(argv[2])
        colors, bg = set(), bytes(rows[0][0:3])
        ink = 0
        for y in range(0, h, 2):
            r = rows[y]
            for x in range(0, w * bpp, bpp * 2):
                px = bytes(r[x:x + 3])
                colors.add(px)
                ink += px != bg
        print(w, h, len(colors), '%.4f' % (ink / float(((h + 1) // 2) * ((w + 1) // 2))))
        return 0
    if len(argv) == 8 and argv[1] == 'crop':
        w, h, bpp, rows = read(argv[2])
        x, y, cw, ch = (int(v) for v in argv[3:7])
        x, y = min(x, w), min(y, h)
        cw, ch = min(cw, w - x), min(ch, h - y)
        write(argv[7], cw, ch, bpp, [r[x * bpp:(x + cw) * bpp] for r in rows[y:y + ch]])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError, zlib.error) as e:
        sys.stderr.write('png.py: %s\n' % e)
        sys.exit(1)
