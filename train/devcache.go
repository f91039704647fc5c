package train

import (
	"github.com/skipgraph/skipgraph/bundle"
	"github.com/skipgraph/skipgraph/runtime"
	"github.com/skipgraph/skipgraph/tensorio"
)

// deviceCache holds an epoch's image inputs (boundary states, or pixels when the whole image
// tower trains) in a resident stepper's device memory: the features graph writes each chunk's
// states into a device buffer, the chunks are joined on the device, and each batch is gathered
// there (FeedRows), so no image data crosses to the host during training.
type deviceCache struct {
	st     *bundle.Stepper
	axis   int
	bind   *runtime.Binding // the features session's binding (states)
	chunks []*runtime.Value
	all    *runtime.Value
	rows   []int64
}

// reset drops the previous epoch's cache.
func (c *deviceCache) reset() {
	for _, v := range c.chunks {
		v.Close()
	}
	c.chunks = c.chunks[:0]
	if c.all != nil {
		c.all.Close()
		c.all = nil
	}
}

// addPixels copies one chunk of preprocessed pixels into device memory.
func (c *deviceCache) addPixels(px []float32, shape []int64) error {
	t, err := tensorio.FromSlice(shape, px)
	if err != nil {
		return err
	}
	return c.addHost(t)
}

// addHost copies a host tensor into a new device chunk.
func (c *deviceCache) addHost(t *tensorio.Tensor) error {
	v, err := c.st.Memory().New(t.DType, t.Shape...)
	if err != nil {
		return err
	}
	hv, err := runtime.NewValue(t)
	if err == nil {
		err = c.st.Kernels().Copy(v, hv)
		hv.Close()
	}
	if err != nil {
		v.Close()
		return err
	}
	c.chunks = append(c.chunks, v)
	return nil
}

// addStates runs the image prefix on one chunk of pixels with its state output bound to device
// memory. Where the features graph does not fix the state's other dimensions, the states are
// computed on the host side of the binding and copied in.
func (c *deviceCache) addStates(sess *runtime.Session, input, state string, pt *tensorio.Tensor) error {
	info, _ := sess.Output(state)
	shape := append([]int64{}, info.Shape...)
	static := len(shape) > c.axis
	for i := range shape {
		if i == c.axis {
			shape[i] = pt.Shape[0]
		} else if shape[i] < 0 {
			static = false
		}
	}
	if !static {
		res, err := sess.Run(map[string]*tensorio.Tensor{input: pt})
		if err != nil {
			return err
		}
		return c.addHost(res[state])
	}
	if c.bind == nil {
		b, err := sess.NewBinding()
		if err != nil {
			return err
		}
		c.bind = b
	}
	in, err := runtime.NewValue(pt)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.st.Memory().New(tensorio.Float32, shape...)
	if err != nil {
		return err
	}
	err = c.bind.BindInput(input, in)
	if err == nil {
		err = c.bind.BindOutput(state, out)
	}
	if err == nil {
		err = c.bind.Run()
	}
	if err != nil {
		out.Close()
		return err
	}
	c.chunks = append(c.chunks, out)
	return nil
}

// finish joins the chunks into one device tensor along the batch axis.
func (c *deviceCache) finish() error {
	if len(c.chunks) == 1 {
		c.all, c.chunks = c.chunks[0], c.chunks[:0]
		return nil
	}
	shape := append([]int64{}, c.chunks[0].Shape()...)
	shape[c.axis] = 0
	for _, v := range c.chunks {
		shape[c.axis] += v.Shape()[c.axis]
	}
	all, err := c.st.Memory().New(tensorio.Float32, shape...)
	if err != nil {
		return err
	}
	if err := c.st.Kernels().Concat(all, c.chunks, c.axis); err != nil {
		all.Close()
		return err
	}
	for _, v := range c.chunks {
		v.Close()
	}
	c.chunks = c.chunks[:0]
	c.all = all
	return nil
}

// feed gathers the batch's items into the step input name.
func (c *deviceCache) feed(name string, batch []int) error {
	c.rows = c.rows[:0]
	for _, i := range batch {
		c.rows = append(c.rows, int64(i))
	}
	return c.st.FeedRows(name, c.all, c.rows, c.axis)
}

// close releases the cache (before the stepper, whose memory holds it).
func (c *deviceCache) close() {
	c.reset()
	if c.bind != nil {
		c.bind.Close()
		c.bind = nil
	}
}
