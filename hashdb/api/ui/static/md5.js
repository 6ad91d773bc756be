// MD5 (RFC 1321) over an ArrayBuffer: Web Crypto has no MD5, and the exact-bytes signal the
// database shares is MD5 as well as SHA-256. Written for this console; checked by the browser
// tests against Python's hashlib on the fixture files.
"use strict";
(function (global) {
  var S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
  var K = new Int32Array(64);
  for (var i = 0; i < 64; i++) {
    K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
  }

  function md5(buffer) {
    var bytes = new Uint8Array(buffer);
    var n = bytes.length;
    // Pad: 0x80, zeros to 56 mod 64, then the bit length as 64-bit little-endian.
    var total = ((n + 8) >> 6 << 6) + 64;
    var padded = new Uint8Array(total);
    padded.set(bytes);
    padded[n] = 0x80;
    var view = new DataView(padded.buffer);
    view.setUint32(total - 8, (n * 8) >>> 0, true);
    view.setUint32(total - 4, Math.floor(n / 536870912) >>> 0, true);
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    var M = new Int32Array(16);
    for (var off = 0; off < total; off += 64) {
      for (var j = 0; j < 16; j++) { M[j] = view.getInt32(off + 4 * j, true); }
      var A = a0, B = b0, C = c0, D = d0;
      for (var k = 0; k < 64; k++) {
        var F, g;
        if (k < 16) { F = (B & C) | (~B & D); g = k; }
        else if (k < 32) { F = (D & B) | (~D & C); g = (5 * k + 1) & 15; }
        else if (k < 48) { F = B ^ C ^ D; g = (3 * k + 5) & 15; }
        else { F = C ^ (B | ~D); g = (7 * k) & 15; }
        F = (F + A + K[k] + M[g]) | 0;
        A = D; D = C; C = B;
        B = (B + ((F << S[k]) | (F >>> (32 - S[k])))) | 0;
      }
      a0 = (a0 + A) | 0; b0 = (b0 + B) | 0; c0 = (c0 + C) | 0; d0 = (d0 + D) | 0;
    }
    var out = "";
    [a0, b0, c0, d0].forEach(function (word) {
      for (var s = 0; s < 32; s += 8) { out += ((word >>> s) & 255).toString(16).padStart(2, "0"); }
    });
    return out;
  }

  global.hashdbMd5 = md5;
})(window);
