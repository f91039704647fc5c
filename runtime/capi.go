package runtime

// Calls into ONNX Runtime's C API that onnxruntime_go does not wrap: the providers a build
// offers, memory on a session's device (allocators, tensors ORT allocates) and binding such
// tensors. The API is reached the way onnxruntime_go reaches it (OrtGetApiBase()->GetApi) from
// the library already loaded; the OrtApi struct is a table of function pointers whose order
// ONNX Runtime keeps stable across releases (new entries are appended), so each call names the
// slot it uses. TestAPISlots checks the slots against the onnxruntime_c_api.h that
// onnxruntime_go ships.

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

// Slots of the OrtApi function table (index of the function pointer).
enum {
	SG_GetErrorMessage = 2,
	SG_CreateTensorAsOrtValue = 48,
	SG_GetTensorMutableData = 51,
	SG_CreateMemoryInfo = 68,
	SG_ReleaseStatus = 93,
	SG_ReleaseMemoryInfo = 94,
	SG_ReleaseValue = 96,
	SG_GetAvailableProviders = 125,
	SG_ReleaseAvailableProviders = 126,
	SG_CreateAllocator = 131,
	SG_ReleaseAllocator = 132,
	SG_BindInput = 136,
	SG_BindOutput = 137,
};

typedef struct {
	void* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} sg_api_base;

static void** sg_api;

static const char* sg_init(const char* path, uint32_t version) {
	void* h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (!h) return "the ONNX Runtime library is not loaded";
	sg_api_base* (*get)(void) = (sg_api_base* (*)(void))dlsym(h, "OrtGetApiBase");
	if (!get) return "OrtGetApiBase not found";
	sg_api = (void**)get()->GetApi(version);
	if (!sg_api) return "the library does not serve the requested API version";
	return 0;
}

typedef void* sg_status;

static const char* sg_error_message(sg_status st) {
	return ((const char* (*)(sg_status))sg_api[SG_GetErrorMessage])(st);
}
static void sg_release_status(sg_status st) {
	((void (*)(sg_status))sg_api[SG_ReleaseStatus])(st);
}
static sg_status sg_get_available_providers(char*** out, int* n) {
	return ((sg_status (*)(char***, int*))sg_api[SG_GetAvailableProviders])(out, n);
}
static sg_status sg_release_available_providers(char** p, int n) {
	return ((sg_status (*)(char**, int))sg_api[SG_ReleaseAvailableProviders])(p, n);
}
static sg_status sg_create_memory_info(const char* name, int alloc_type, int id, int mem_type, void** out) {
	return ((sg_status (*)(const char*, int, int, int, void**))sg_api[SG_CreateMemoryInfo])(name, alloc_type, id, mem_type, out);
}
static void sg_release_memory_info(void* mi) {
	((void (*)(void*))sg_api[SG_ReleaseMemoryInfo])(mi);
}
static sg_status sg_create_allocator(void* session, void* mi, void** out) {
	return ((sg_status (*)(void*, void*, void**))sg_api[SG_CreateAllocator])(session, mi, out);
}
static void sg_release_allocator(void* a) {
	((void (*)(void*))sg_api[SG_ReleaseAllocator])(a);
}
static sg_status sg_create_tensor(void* alloc, int64_t* shape, size_t rank, int dtype, void** out) {
	return ((sg_status (*)(void*, int64_t*, size_t, int, void**))sg_api[SG_CreateTensorAsOrtValue])(alloc, shape, rank, dtype, out);
}
static sg_status sg_tensor_data(void* v, void** out) {
	return ((sg_status (*)(void*, void**))sg_api[SG_GetTensorMutableData])(v, out);
}
static void sg_release_value(void* v) {
	((void (*)(void*))sg_api[SG_ReleaseValue])(v);
}
static sg_status sg_bind_input(void* b, const char* name, void* v) {
	return ((sg_status (*)(void*, const char*, void*))sg_api[SG_BindInput])(b, name, v);
}
static sg_status sg_bind_output(void* b, const char* name, void* v) {
	return ((sg_status (*)(void*, const char*, void*))sg_api[SG_BindOutput])(b, name, v);
}

// sg_probe loads a shared library as the dynamic loader would for ONNX Runtime and writes the
// file it resolved to into path (or the loader's error). Returns 1 when found.
static int sg_probe(const char* name, char* path, size_t n) {
	void* h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (!h) {
		const char* e = dlerror();
		snprintf(path, n, "%s", e ? e : "not found");
		return 0;
	}
	struct link_map* lm = 0;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name) {
		snprintf(path, n, "%s", lm->l_name);
	} else {
		snprintf(path, n, "%s", name);
	}
	dlclose(h);
	return 1;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// apiVersion is the OrtApi version requested (the one onnxruntime_go v1.27 asks for).
const apiVersion = 24

// apiSlots lists the OrtApi slots used, by function name (for TestAPISlots).
var apiSlots = map[string]int{
	"GetErrorMessage": C.SG_GetErrorMessage, "CreateTensorAsOrtValue": C.SG_CreateTensorAsOrtValue,
	"GetTensorMutableData": C.SG_GetTensorMutableData, "CreateMemoryInfo": C.SG_CreateMemoryInfo,
	"ReleaseStatus": C.SG_ReleaseStatus, "ReleaseMemoryInfo": C.SG_ReleaseMemoryInfo,
	"ReleaseValue": C.SG_ReleaseValue, "GetAvailableProviders": C.SG_GetAvailableProviders,
	"ReleaseAvailableProviders": C.SG_ReleaseAvailableProviders, "CreateAllocator": C.SG_CreateAllocator,
	"ReleaseAllocator": C.SG_ReleaseAllocator, "BindInput": C.SG_BindInput, "BindOutput": C.SG_BindOutput,
}

var (
	capiOnce sync.Once
	capiErr  error
)

// capi makes the C API table available (after Init).
func capi() error {
	if err := ensureInit(); err != nil {
		return err
	}
	capiOnce.Do(func() {
		p := C.CString(mappedLibraryPath(LibraryPath()))
		defer C.free(unsafe.Pointer(p))
		if msg := C.sg_init(p, apiVersion); msg != nil {
			capiErr = fmt.Errorf("onnxruntime C API: %s", C.GoString(msg))
		}
	})
	return capiErr
}

// statusErr turns an OrtStatus into an error and releases it.
func statusErr(st C.sg_status) error {
	if st == nil {
		return nil
	}
	msg := C.GoString(C.sg_error_message(st))
	C.sg_release_status(st)
	return errors.New(msg)
}

// AvailableProviders returns the execution providers the loaded ONNX Runtime build offers
// (ORT's GetAvailableProviders), e.g. [CUDAExecutionProvider CPUExecutionProvider].
func AvailableProviders() ([]string, error) {
	if err := capi(); err != nil {
		return nil, err
	}
	var list **C.char
	var n C.int
	if err := statusErr(C.sg_get_available_providers(&list, &n)); err != nil {
		return nil, fmt.Errorf("onnxruntime: available providers: %s", oneLine(err))
	}
	out := make([]string, int(n))
	for i, p := range unsafe.Slice(list, int(n)) {
		out[i] = C.GoString(p)
	}
	C.sg_release_available_providers(list, n)
	return out, nil
}

// probeLibrary asks the dynamic loader for a library by name and returns the file it resolved
// to, or the loader's error.
func probeLibrary(name string) (string, bool) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	buf := make([]byte, 4096)
	ok := C.sg_probe(cn, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))) == 1
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0]))), ok
}

// ortValuePtr returns the OrtValue* inside an onnxruntime_go value.
func ortValuePtr(v ort.Value) unsafe.Pointer {
	in := v.GetInternals()
	f := reflect.ValueOf(in).Elem().FieldByName("ortValue")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		panic("onnxruntime_go ValueInternalData has no ortValue pointer; the runtime package does not match its onnxruntime_go version")
	}
	return f.UnsafePointer()
}

// sessionPtr returns the OrtSession* inside an onnxruntime_go DynamicAdvancedSession.
func sessionPtr(s *ort.DynamicAdvancedSession) (unsafe.Pointer, error) {
	adv := reflect.ValueOf(s).Elem().FieldByName("s")
	if !adv.IsValid() || adv.Kind() != reflect.Pointer || adv.IsNil() {
		return nil, errors.New("unexpected onnxruntime_go DynamicAdvancedSession layout")
	}
	f := adv.Elem().FieldByName("ortSession")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errors.New("unexpected onnxruntime_go AdvancedSession layout")
	}
	return f.UnsafePointer(), nil
}

// bindingPtr returns the OrtIoBinding* inside an onnxruntime_go IoBinding.
func bindingPtr(b *ort.IoBinding) (unsafe.Pointer, error) {
	f := reflect.ValueOf(b).Elem().FieldByName("o")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errors.New("unexpected onnxruntime_go IoBinding layout")
	}
	return f.UnsafePointer(), nil
}

// bindRaw binds an OrtValue* to a binding's input or output.
func bindRaw(b *ort.IoBinding, name string, v unsafe.Pointer, output bool) error {
	bp, err := bindingPtr(b)
	if err != nil {
		return err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	if output {
		return statusErr(C.sg_bind_output(bp, cn, v))
	}
	return statusErr(C.sg_bind_input(bp, cn, v))
}

func createMemoryInfo(name string, allocType, id, memType int) (unsafe.Pointer, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var out unsafe.Pointer
	err := statusErr(C.sg_create_memory_info(cn, C.int(allocType), C.int(id), C.int(memType), &out))
	return out, err
}

func releaseMemoryInfo(mi unsafe.Pointer) { C.sg_release_memory_info(mi) }

func createAllocator(session, mi unsafe.Pointer) (unsafe.Pointer, error) {
	var out unsafe.Pointer
	err := statusErr(C.sg_create_allocator(session, mi, &out))
	return out, err
}

func releaseAllocator(a unsafe.Pointer) { C.sg_release_allocator(a) }

// createTensor allocates an uninitialised tensor with an ORT allocator.
func createTensor(alloc unsafe.Pointer, shape []int64, dtype int) (unsafe.Pointer, error) {
	cs := (*C.int64_t)(C.malloc(C.size_t(8 * max(len(shape), 1))))
	defer C.free(unsafe.Pointer(cs))
	copy(unsafe.Slice((*int64)(unsafe.Pointer(cs)), max(len(shape), 1)), shape)
	var out unsafe.Pointer
	err := statusErr(C.sg_create_tensor(alloc, cs, C.size_t(len(shape)), C.int(dtype), &out))
	return out, err
}

// tensorData returns the address of a tensor's data (device memory for a device tensor).
func tensorData(v unsafe.Pointer) (unsafe.Pointer, error) {
	var out unsafe.Pointer
	err := statusErr(C.sg_tensor_data(v, &out))
	return out, err
}

func releaseValue(v unsafe.Pointer) { C.sg_release_value(v) }
