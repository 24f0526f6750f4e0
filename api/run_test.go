package api_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/api"
)

// jsonFields returns the JSON names of the fields of struct type t.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// fill sets every field of the struct v points to to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int64:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("K"), reflect.ValueOf("v"))
	default:
		panic("fill: " + v.Kind().String())
	}
}

func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunRequest: a run request has exactly the fields of a create request
// but idle_timeout and those of an execute request, and splits into the
// two without losing any.
func TestRunRequest(t *testing.T) {
	t.Parallel()
	want := slices.Concat(jsonFields(reflect.TypeFor[api.CreateRequest]()), jsonFields(reflect.TypeFor[api.ExecuteRequest]()))
	want = slices.DeleteFunc(want, func(s string) bool { return s == "idle_timeout" })
	slices.Sort(want)
	want = slices.Compact(want) // timeout is in both
	if got := jsonFields(reflect.TypeFor[api.RunRequest]()); !slices.Equal(got, want) {
		t.Errorf("RunRequest has fields %v, want %v", got, want)
	}

	var r api.RunRequest
	fill(reflect.ValueOf(&r).Elem())
	run := toMap(t, r)
	split := toMap(t, r.CreateRequest())
	if _, ok := split["timeout"]; ok {
		t.Error("CreateRequest carries the run's timeout; it is the execution's")
	}
	maps.Copy(split, toMap(t, r.ExecuteRequest()))
	if !reflect.DeepEqual(run, split) {
		t.Errorf("the run request %v splits into %v", run, split)
	}
}
