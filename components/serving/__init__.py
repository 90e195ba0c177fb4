"""Using the trained model: `chat` (one OpenAI-shaped greedy assistant turn, shared by the rest), `server`
(`tooltune serve`, an OpenAI-compatible HTTP server), `pyfunc` (the MLflow ChatModel that register logs) and `card`
(the model card). Model output is parsed here, never executed; `components/serving/terminal.py` (`tooltune chat`) is the one
place that runs calls, in a built-in domain's simulator.
"""
