# Generates float_repr.txt: "<f64 bits as hex> <Python repr>" for a spread of doubles:
# random bit patterns, random short decimals, powers of ten and the repr switch points.
# Usage: python3 gen_floats.py float_repr.txt
import random, struct, sys
random.seed(20261124)
vals = []
for _ in range(700):
    vals.append(struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))[0])
for _ in range(400):
    vals.append(round(random.uniform(-1e6, 1e6), random.randint(0, 8)))
for _ in range(200):
    vals.append(random.random() * 10 ** random.randint(-30, 30))
for e in range(-330, 310):
    for m in (1.0, 9.999999999999999):
        try: vals.append(float(f"{m}e{e}"))
        except OverflowError: pass
for x in (1e-5, 9.999999999999999e-06, 0.0001, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1e15,
          2.0**53, 2.0**53 + 2, 2.0**63, 2.0**64, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
          0.1 + 0.2, 1/3, 2/3, 100.0, 1234567890123456.7, 0.0, -0.0):
    vals.append(x)
    vals.append(-x)
for _ in range(150):
    vals.append(struct.unpack("<f", struct.pack("<I", random.getrandbits(32)))[0])
with open(sys.argv[1], "w") as f:
    for v in vals:
        if v != v or v in (float("inf"), float("-inf")):
            continue
        f.write("%016x %s\n" % (struct.unpack("<Q", struct.pack("<d", v))[0], repr(v)))
