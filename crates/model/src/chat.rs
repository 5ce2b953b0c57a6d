//! Chat templates, rendered as transformers renders them (`apply_chat_template`: Jinja with
//! `trim_blocks` and `lstrip_blocks`, `raise_exception`, the tokenizer's special tokens as
//! variables, Python string methods on values), for causal-LM rerankers: sentence-transformers 6
//! turns a (query, document) pair into the messages `[{"role": "query"}, {"role": "document"}]`
//! and renders them through the model's template, which turns them into the model's prompt.

use std::collections::BTreeMap;

use minijinja::{Environment, Error, ErrorKind};
use serde_json::json;

use crate::error::{ModelError, Result};

/// Qwen3-Reranker's prompt as its model card builds it, as a template over query/document/system
/// messages (the form sentence-transformers and vLLM use for it): for checkpoints that ship only
/// Qwen3's conversational chat template, which has no query or document role.
pub const QWEN3_RERANKER_TEMPLATE: &str = "<|im_start|>system\nJudge whether the Document meets \
the requirements based on the Query and the Instruct provided. Note that the answer can only be \
\"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: {{ messages | selectattr(\"role\", \
\"eq\", \"system\") | map(attribute=\"content\") | first | default(\"Given a web search query, \
retrieve relevant passages that answer the query\") }}\n<Query>: {{ messages | selectattr(\"role\", \
\"eq\", \"query\") | map(attribute=\"content\") | first }}\n<Document>: {{ messages | \
selectattr(\"role\", \"eq\", \"document\") | map(attribute=\"content\") | first \
}}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n\n";

const NAME: &str = "chat_template";

/// A chat template that renders a query and a document into one prompt.
#[derive(Debug)]
pub(crate) struct PairTemplate {
    env: Environment<'static>,
    structured: bool,
    special_tokens: BTreeMap<String, String>,
}

fn template_error(e: Error) -> ModelError {
    ModelError::Unsupported(format!("the model's chat template: {e:#}"))
}

impl PairTemplate {
    /// Compiles `source`; `structured`: message contents as lists of typed parts (see
    /// [`crate::layout::ModelLayout::structured_messages`]).
    pub fn new(
        source: &str,
        structured: bool,
        special_tokens: BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source.to_string())
            .map_err(template_error)?;
        let template = Self {
            env,
            structured,
            special_tokens,
        };
        template.check_pair_roles()?;
        Ok(template)
    }

    /// The prompt for one pair, as `apply_chat_template(messages)` renders it.
    pub fn render(&self, query: &str, document: &str) -> Result<String> {
        let message = |role: &str, text: &str| {
            if self.structured {
                json!({"role": role, "content": [{"type": "text", "text": text}]})
            } else {
                json!({"role": role, "content": text})
            }
        };
        let mut context = serde_json::Map::new();
        for (name, token) in &self.special_tokens {
            context.insert(name.clone(), json!(token));
        }
        context.insert(
            "messages".into(),
            json!([message("query", query), message("document", document)]),
        );
        context.insert("add_generation_prompt".into(), json!(false));
        self.env
            .get_template(NAME)
            .and_then(|t| t.render(&context))
            .map_err(template_error)
    }

    /// sentence-transformers refuses a template that drops the query or the document (one that
    /// knows only system/user/assistant renders a pair to a prompt holding neither): so does this.
    fn check_pair_roles(&self) -> Result<()> {
        let (query, document) = ("\u{1}fathom-query\u{1}", "\u{1}fathom-document\u{1}");
        let rendered = self.render(query, document)?;
        let missing: Vec<&str> = [("query", query), ("document", document)]
            .into_iter()
            .filter(|(_, marker)| !rendered.contains(marker))
            .map(|(role, _)| role)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(ModelError::Unsupported(format!(
            "the model's chat template does not render the {} of a pair (a reranker's template \
             places the `query` and `document` messages, e.g. `<Query>: {{{{ messages | \
             selectattr(\"role\", \"eq\", \"query\") | map(attribute=\"content\") | first }}}}`); \
             put one in chat_template.jinja beside the model",
            missing.join(" and ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> BTreeMap<String, String> {
        [("eos_token".to_string(), "</s>".to_string())].into()
    }

    #[test]
    fn renders_like_jinja_with_trimmed_blocks() {
        // The output below is what jinja2 (trim_blocks, lstrip_blocks, as transformers sets it)
        // renders for this template and these messages.
        let source = "{% for m in messages %}\n  {% if m.role == 'query' %}\nQ={{ m.content }}!\n  {% else %}\nD={{ m.content.strip() }}\n  {% endif %}\n{% endfor %}{{ eos_token }}";
        let t = PairTemplate::new(source, false, tokens()).unwrap();
        assert_eq!(t.render("what", "  doc  ").unwrap(), "Q=what!\nD=doc\n</s>");
    }

    #[test]
    fn structured_messages_carry_typed_parts() {
        let source = "{{ (messages | selectattr('role', 'eq', 'query') | first).content[0].text }}|{{ (messages | selectattr('role', 'eq', 'document') | first).content[0].text }}";
        let t = PairTemplate::new(source, true, BTreeMap::new()).unwrap();
        assert_eq!(t.render("q", "d").unwrap(), "q|d");
    }

    #[test]
    fn qwen3_template_is_the_model_cards_prompt() {
        let t = PairTemplate::new(QWEN3_RERANKER_TEMPLATE, false, BTreeMap::new()).unwrap();
        // Qwen3-Reranker's model card: prefix + format_instruction(None, query, doc) + suffix.
        let expected = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: What is the capital of China?\n<Document>: The capital of China is Beijing.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
        assert_eq!(
            t.render(
                "What is the capital of China?",
                "The capital of China is Beijing."
            )
            .unwrap(),
            expected
        );
    }

    #[test]
    fn a_template_without_pair_roles_is_refused() {
        let chat = "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}";
        let err = PairTemplate::new(chat, false, BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("query and document"), "{err}");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let err = PairTemplate::new(
            "{{ raise_exception('no pairs here') }}",
            false,
            BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no pairs here"), "{err}");
    }
}
