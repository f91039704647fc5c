package tensorio

import (
	"math"
	"math/rand"
	"testing"
)

func TestFloat16Known(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                       // largest half
		{65520, 0x7c00},                       // rounds up to +Inf
		{float32(math.Inf(-1)), 0xfc00},       // -Inf
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000}, // tie to even: 0
		{float32(math.Ldexp(3, -25)), 0x0002}, // tie to even: 2
		{float32(math.Ldexp(1, -14)), 0x0400}, // smallest normal
		{0.1, 0x2e66},
		{1.0 / 3, 0x3555},
		{1 + 1.0/2048, 0x3c00}, // tie between 0x3c00 and 0x3c01: even
		{1 + 3.0/2048, 0x3c02}, // tie between 0x3c01 and 0x3c02: even
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := Float32ToFloat16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN encoded as %#04x, not a NaN", h)
	}
	if f := Float16ToFloat32(0x7e00); !math.IsNaN(float64(f)) {
		t.Errorf("0x7e00 decoded as %g, want NaN", f)
	}
}

// Every half value decodes exactly and encodes back to itself.
func TestFloat16RoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := Float16ToFloat32(h)
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := Float32ToFloat16(f); got != h {
			t.Fatalf("half %#04x -> %g -> %#04x", h, f, got)
		}
	}
}

// Float32ToFloat16 picks the nearest half, ties to even.
func TestFloat16Nearest(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		f := float32(math.Ldexp(rng.Float64()*2-1, rng.Intn(40)-26))
		h := Float32ToFloat16(f)
		got := float64(Float16ToFloat32(h))
		d := math.Abs(float64(f) - got)
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7fff >= 0x7c00 || (nb^h)&0x8000 != 0 {
				continue
			}
			dn := math.Abs(float64(f) - float64(Float16ToFloat32(nb)))
			if dn < d || (dn == d && h&1 == 1) {
				t.Fatalf("f=%g: got half %#04x (%g), neighbour %#04x (%g) is nearer or even", f, h, got, nb, Float16ToFloat32(nb))
			}
		}
	}
}

func TestBFloat16(t *testing.T) {
	for _, f := range []float32{0, 1, -2.5, 3.140625, 0x1p100} {
		if got := BFloat16ToFloat32(Float32ToBFloat16(f)); got != f {
			t.Errorf("bfloat16 round trip of %g gave %g", f, got)
		}
	}
	if got := Float32ToBFloat16(1 + 1.0/256); got != 0x3f80 { // tie to even
		t.Errorf("Float32ToBFloat16(1+2^-8) = %#04x, want 0x3f80", got)
	}
	if !math.IsNaN(float64(BFloat16ToFloat32(Float32ToBFloat16(float32(math.NaN()))))) {
		t.Error("bfloat16 NaN lost")
	}
}
