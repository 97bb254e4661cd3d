"""The course's terms in both languages: one Chinese term per concept, and the variants the pages must not use.

``book/make_notebooks.py`` writes the glossary pages (``book/zh/glossary.md``, ``book/en/glossary.md``) from this
table, and ``tests/test_terms.py`` flags a variant in any Chinese page.
"""

# (English, Chinese, variants the zh pages must not use, (note in English, note in Chinese))
TERMS: list[tuple[str, str, tuple[str, ...], tuple[str, str]]] = [
    ("epoch", "轮", ("迭代周期",), ("one pass over the training set", "遍历一次训练集")),
    ("step (iteration)", "步", (), ("one update of the weights on one batch", "在一个批量上更新一次权重")),
    ("batch, batch size", "批量、批量大小", ("批大小", "批次大小"), ("", "")),
    ("learning rate", "学习率", (), ("", "")),
    ("momentum", "动量", (), ("", "")),
    ("weight decay", "权重衰减", (), ("", "")),
    ("convolutional layer", "卷积层", (), ("", "")),
    ("pooling layer", "池化层", ("汇聚层",), ("", "")),
    ("max pooling", "最大池化", ("最大汇聚",), ("", "")),
    ("overlapping pooling", "重叠池化", ("重叠汇聚",), ("3×3 windows, stride 2", "3×3 窗口、步幅 2")),
    ("fully connected (dense) layer", "全连接层", ("稠密层",), ("", "")),
    ("activation function", "激活函数", ("激励函数",), ("", "")),
    ("dropout", "丢弃法", ("暂退法", "随机失活"), ("", "")),
    ("data augmentation", "图像增广", ("数据增强", "图像增强", "数据增广"), ("", "")),
    ("local response normalisation (LRN)", "局部响应归一化", ("局部响应规范化",), ("", "")),
    ("batch normalisation", "批量规范化", ("批量归一化", "批归一化", "批标准化"), ("", "")),
    ("all-reduce", "全归约", ("全规约", "全局归约", "全局规约"), ("", "")),
    ("overfitting", "过拟合", (), ("", "")),
    ("validation set (held-out images)", "验证集", ("校验集", "开发集"), ("training images set aside to choose "
     "settings by, never the test set", "从训练集里留出来用于挑选设置的图像，不是测试集")),
    ("top-1 / top-5 error", "top-1 / top-5 错误率", (), ("the true class is not the model's most probable class / not "
     "among its five most probable", "正确类别不是模型最可能的那一个类别 / 不在它最可能的五个类别之中")),
    ("seed, run-to-run variation", "随机种子、运行间的波动", (), ("", "")),
    ("mixed precision", "混合精度", (), ("", "")),
    ("throughput (images per second)", "吞吐量（每秒图像数）", (), ("", "")),
]


def glossary(lang: str) -> str:
    """The glossary page in ``lang`` (markdown)."""
    if lang == "zh":
        head = ["# 术语表", "", "本书每个概念只用一个中文术语。下表列出英文、本书用的中文，以及本书不用的其他译法。", "",
                "| English | 本书用语 | 不用 | 说明 |", "|---|---|---|---|"]
        note = lambda n: n[1]
    else:
        head = ["# Glossary", "", "The terms of the course in English and Chinese; the Chinese pages use exactly one term "
                "per concept (the last column lists the variants they avoid).", "",
                "| English | 中文 | note | not used in the zh pages |", "|---|---|---|---|"]
        note = lambda n: n[0]
    rows = []
    for en, zh, variants, n in TERMS:
        avoid = "、".join(variants) or "—"
        rows.append(f"| {en} | {zh} | {avoid} | {note(n) or '—'} |" if lang == "zh"
                    else f"| {en} | {zh} | {note(n) or '—'} | {avoid} |")
    return "\n".join(head + rows) + "\n"
