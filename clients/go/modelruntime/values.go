package modelruntime

import (
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

// Float, Int, String and Bool make the model parameter values of a request:
//
//	ModelParameters: map[string]*modelruntimev1.ParameterValue{
//		"temperature": modelruntime.Float(0.2),
//		"max_tokens":  modelruntime.Int(200),
//	}
//
// The kind must match the parameter rule's type: Int also fits a float rule.
func Float(v float64) *modelruntimev1.ParameterValue {
	return &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_FloatValue{FloatValue: v}}
}

// Int makes an integer model parameter value; see [Float].
func Int(v int64) *modelruntimev1.ParameterValue {
	return &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_IntValue{IntValue: v}}
}

// String makes a string (or text) model parameter value; see [Float].
func String(v string) *modelruntimev1.ParameterValue {
	return &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_StringValue{StringValue: v}}
}

// Bool makes a boolean model parameter value; see [Float].
func Bool(v bool) *modelruntimev1.ParameterValue {
	return &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_BoolValue{BoolValue: v}}
}

// SystemMessage makes a system prompt message with plain text content.
func SystemMessage(text string) *modelruntimev1.PromptMessage {
	return &modelruntimev1.PromptMessage{Role: modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_SYSTEM, Content: text}
}

// UserMessage makes a user prompt message with plain text content.
func UserMessage(text string) *modelruntimev1.PromptMessage {
	return &modelruntimev1.PromptMessage{Role: modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_USER, Content: text}
}
